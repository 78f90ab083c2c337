"""How much of a request's body uvicorn reads ahead of the app.

uvicorn stops reading a connection once `HIGH_WATER_LIMIT` (64 KiB) of its body waits
for the app, and reads on when the app takes it. An upload streams tens of megabytes
through the app, which parses, spools and copies each chunk to PostgreSQL while the next
arrives: at 64 KiB, reading stops and starts hundreds of times a file, and the copy to
PostgreSQL waits on it (docs/decisions/2026-12-07-cents-and-read-ahead.md). uvicorn has
no setting for it; its protocols read their module's constant for each chunk of a body,
so setting it there, once, before the first connection, is enough. A body still waits in
bounded memory: `BODY_READ_AHEAD` per connection at most, beyond which reading stops as
before.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

BODY_READ_AHEAD = 1 << 20


def widen() -> None:
    """Let uvicorn's HTTP protocols read up to `BODY_READ_AHEAD` of a body ahead of the
    app; warn if a uvicorn version no longer has the constant (nothing else changes)."""
    from uvicorn.protocols.http import h11_impl, httptools_impl

    for protocol in (httptools_impl, h11_impl):
        limit = getattr(protocol, "HIGH_WATER_LIMIT", None)
        if not isinstance(limit, int):
            log.warning("%s has no HIGH_WATER_LIMIT: bodies read 64 KiB ahead", protocol.__name__)
            continue
        setattr(protocol, "HIGH_WATER_LIMIT", max(limit, BODY_READ_AHEAD))  # noqa: B010
