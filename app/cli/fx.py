"""`orderlens fx refresh`: the BRL→USD rate fetched now, in this process."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from app.cli import common

if TYPE_CHECKING:
    from app import db
    from app.config import Settings
    from app.fx.cache import Rate

fx_cli = typer.Typer(help="BRL→USD rates.", no_args_is_help=True)


@fx_cli.command("refresh")
def fx_refresh() -> None:
    """Fetch the current rate from the provider now and store it."""
    import asyncio

    from app import logs
    from app.fx import schemas as fx_schemas

    settings = common.settings()
    logs.configure(settings)
    database = common.prepare()
    try:
        rate = asyncio.run(_refresh(settings, database))
    finally:
        database.release()
    common.out().print(
        f"1 BRL = {fx_schemas.rate_text(rate.rate)} USD  source {rate.source}"
        f"  as of {rate.as_of}  fetched {rate.fetched_at:%Y-%m-%d %H:%M:%S %Z}"
        + ("  [yellow](stale: the source did not answer)[/yellow]" if rate.stale else "")
    )
    if rate.stale:
        raise typer.Exit(1)


async def _refresh(settings: Settings, database: db.Database) -> Rate:
    import httpx

    from app import db
    from app.fx import service as fx_service

    engine = db.create_engine(database.url, pool_size=1)
    try:
        async with httpx.AsyncClient() as http:
            return await fx_service.build(settings, http=http, engine=engine).latest(refresh=True)
    finally:
        await engine.dispose()
