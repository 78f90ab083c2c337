"""The API key that every write needs (SPEC section 3)."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from pydantic import SecretStr

from app.config import Settings
from app.errors import Unauthorized

API_KEY_HEADER = "X-API-Key"
api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    scheme_name="ApiKeyAuth",
    description="Required on every write. Unset `API_KEY`: generated at start and printed.",
    auto_error=False,
)


def api_key_file(settings: Settings) -> Path:
    return settings.orderlens_data_dir / "api-key"


def resolve_api_key(settings: Settings) -> tuple[SecretStr, bool]:
    """The configured key, or one generated once and kept in the data folder (mode 0600)
    so that restarts and the local CLI agree on it. The flag says whether it was generated."""
    if settings.api_key is not None:
        return settings.api_key, False
    path = api_key_file(settings)
    if path.exists():
        return SecretStr(path.read_text().strip()), True
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return SecretStr(key), True


async def require_api_key(
    request: Request, supplied: Annotated[str | None, Security(api_key_header)]
) -> None:
    """Reject the request unless it carries the service's key (constant-time comparison)."""
    expected: SecretStr = request.state.api_key
    if supplied is None or not hmac.compare_digest(
        supplied.encode(), expected.get_secret_value().encode()
    ):
        raise Unauthorized(
            f"A valid {API_KEY_HEADER} header is required.",
            headers={"WWW-Authenticate": API_KEY_HEADER},
        )


ApiKeyDep = Depends(require_api_key)
