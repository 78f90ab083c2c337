"""API keys: the write key every write needs (SPEC section 3), and the read keys every
data read needs when READ_ACCESS=key (issue 14)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from pydantic import SecretStr

from app.config import Settings
from app.errors import Forbidden, Unauthorized

API_KEY_HEADER = "X-API-Key"
api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    scheme_name="ApiKeyAuth",
    description="Required on every write, and on every data read when the service runs"
    " with READ_ACCESS=key (a read key or the write key). Unset `API_KEY`: generated at"
    " start and printed.",
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
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another worker process wrote it first: use theirs.
        return SecretStr(path.read_text().strip()), True
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return SecretStr(key), True


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def public_reads_warning(settings: Settings) -> str | None:
    """The line to log when reads are public only because READ_ACCESS was left unset on
    an address other machines can reach."""
    if settings.read_access is not None or is_loopback(settings.host):
        return None
    return (
        f"reads are public: the service listens on {settings.host} and READ_ACCESS is unset;"
        " set READ_ACCESS=key to require X-API-Key on every data read (or READ_ACCESS=public"
        " to silence this warning)"
    )


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _matches(supplied: str | None, keys: Iterable[SecretStr]) -> bool:
    """Whether `supplied` is one of `keys`. Digests of equal length are compared with
    `compare_digest`, every key each time: the time says nothing about the keys."""
    if supplied is None:
        return False
    mine = _digest(supplied)
    found = False
    for key in keys:
        found |= hmac.compare_digest(mine, _digest(key.get_secret_value()))
    return found


def _unauthorized() -> Unauthorized:
    return Unauthorized(
        f"A valid {API_KEY_HEADER} header is required: the service's API_KEY, or else the key"
        " printed by `orderlens serve` at start and kept in its data folder"
        " (ORDERLENS_DATA_DIR/api-key, .orderlens/api-key by default); a read key of"
        " READ_API_KEYS for reads. The command-line tools on that machine find it"
        " themselves.",
        headers={"WWW-Authenticate": API_KEY_HEADER},
    )


async def require_api_key(
    request: Request, supplied: Annotated[str | None, Security(api_key_header)]
) -> None:
    """Reject the request unless it carries the service's write key: 403 `forbidden` for
    a read key (known, but it may not write), 401 `unauthorized` for anything else."""
    if _matches(supplied, [request.state.api_key]):
        return
    if _matches(supplied, request.state.settings.read_api_keys):
        raise Forbidden(
            f"This {API_KEY_HEADER} may read but not write; writes need the write key (API_KEY)."
        )
    raise _unauthorized()


async def require_read_key(
    request: Request, supplied: Annotated[str | None, Security(api_key_header)]
) -> None:
    """Reject the request unless it carries a read key or the write key (401)."""
    settings: Settings = request.state.settings
    if not _matches(supplied, [request.state.api_key, *settings.read_api_keys]):
        raise _unauthorized()


ApiKeyDep = Depends(require_api_key)
ReadKeyDep = Depends(require_read_key)
