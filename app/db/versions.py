"""The server version policy (PostgreSQL 15 to 18) and the time zone check: what the
service refuses to run on, and why."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from sqlalchemy import URL, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.engine import connect

log = logging.getLogger(__name__)

# The PostgreSQL major versions Orderlens supports, in this one place. What it uses
# (MERGE above all) exists from 15 on; .ci/run runs the suite on 18, 15 and 16. Older
# servers are refused; newer ones are let through with a warning, as nothing is known
# to break on them and refusing would block an upgrade of the database first.
OLDEST_SUPPORTED_MAJOR = 15
NEWEST_SUPPORTED_MAJOR = 18

SERVER_VERSION_NUM = "SELECT current_setting('server_version_num')::int"


def version_text(version_num: int) -> str:
    """`server_version_num` as people write it: 150018 is 15.18, 90624 is 9.6.24."""
    if version_num >= 100000:
        return f"{version_num // 10000}.{version_num % 10000}"
    return f"{version_num // 10000}.{version_num // 100 % 100}.{version_num % 100}"


def supported_majors() -> list[int]:
    """The supported major versions, oldest first: [15, 16, 17, 18]."""
    return list(range(OLDEST_SUPPORTED_MAJOR, NEWEST_SUPPORTED_MAJOR + 1))


class UnsupportedServer(Exception):
    """The server is older than the oldest PostgreSQL Orderlens supports."""

    def __init__(self, version_num: int) -> None:
        self.version = version_text(version_num)
        super().__init__(
            f"This server runs PostgreSQL {self.version}; Orderlens supports PostgreSQL"
            f" {OLDEST_SUPPORTED_MAJOR} to {NEWEST_SUPPORTED_MAJOR}."
        )


def check_server_version(version_num: int) -> None:
    """Raise UnsupportedServer for a server older than OLDEST_SUPPORTED_MAJOR."""
    if version_num < OLDEST_SUPPORTED_MAJOR * 10000:
        raise UnsupportedServer(version_num)


async def server_version_num(engine: AsyncEngine) -> int:
    """The server's `server_version_num` (150018 for 15.18)."""
    async with engine.connect() as conn:
        return int(await conn.scalar(text(SERVER_VERSION_NUM)))


def require_supported_server(url: URL) -> None:
    """Refuse (UnsupportedServer) a server too old for Orderlens; warn about one newer
    than it is tested on. Blocking: for the CLI, before it migrates."""
    version_num = asyncio.run(_fetch_version_num(url))
    check_server_version(version_num)
    if version_num >= (NEWEST_SUPPORTED_MAJOR + 1) * 10000:
        log.warning(
            "PostgreSQL %s is newer than the versions Orderlens supports (%d to %d)",
            version_text(version_num),
            OLDEST_SUPPORTED_MAJOR,
            NEWEST_SUPPORTED_MAJOR,
        )


# Raises unless the server's own time zone data knows the name (the uploads read
# date-times in it: a name only Python knows would fail each such upload instead).
KNOWN_TIMEZONE = "SELECT now() AT TIME ZONE $1"


class UnknownTimezone(Exception):
    """BUSINESS_TIMEZONE is a zone the PostgreSQL server does not know."""


def require_known_timezone(url: URL, name: str) -> None:
    """Refuse (UnknownTimezone) a BUSINESS_TIMEZONE the server cannot read date-times in.
    Blocking: for the CLI, before it serves."""
    asyncio.run(_check_timezone(url, name))


async def _check_timezone(url: URL, name: str) -> None:
    conn = await connect(url)
    try:
        await conn.fetchval(KNOWN_TIMEZONE, name)
    except asyncpg.InvalidParameterValueError:
        raise UnknownTimezone(
            f"BUSINESS_TIMEZONE {name!r} is not a time zone this PostgreSQL server knows"
            " (its time zone data may be older than Python's): choose another name."
        ) from None
    finally:
        await conn.close()


async def _fetch_version_num(url: URL) -> int:
    conn = await connect(url)
    try:
        return int(await conn.fetchval(SERVER_VERSION_NUM))
    finally:
        await conn.close()
