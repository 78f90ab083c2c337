"""uvicorn reads up to `BODY_READ_AHEAD` of a request body ahead of the app once the app
serves (`read_ahead.widen`, from the lifespan)."""

from __future__ import annotations

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from uvicorn.protocols.http import h11_impl, httptools_impl

from app.kit import read_ahead


async def test_the_app_lets_uvicorn_read_a_body_further_ahead(
    app: FastAPI, clean_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for protocol in (httptools_impl, h11_impl):
        monkeypatch.setattr(protocol, "HIGH_WATER_LIMIT", 65536)
        # The constant is what the protocol reads for each chunk of a body.
        assert "HIGH_WATER_LIMIT" in protocol.__dict__
    assert "HIGH_WATER_LIMIT" in httptools_impl.HttpToolsProtocol.on_body.__code__.co_names
    async with LifespanManager(app):
        for protocol in (httptools_impl, h11_impl):
            assert protocol.__dict__["HIGH_WATER_LIMIT"] == read_ahead.BODY_READ_AHEAD
