"""Migrations: Alembic's config for `migrations/`, the head this code ships, upgrade and
downgrade, the revision a database is at; and the metadata they compare models with."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import URL, MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.base import Base

metadata: MetaData = Base.metadata  # every table once app.db.tables is imported

# The checkout (or installed tree) the top-level alembic.ini and migrations/ are in.
ROOT = Path(__file__).resolve().parents[2]


def alembic_config(url: URL | None = None) -> Config:
    """Alembic's config for the top-level `migrations/`, bound to `url` when given."""
    ini = ROOT / "alembic.ini"
    cfg = Config(str(ini)) if ini.exists() else Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    # Called from code, the caller owns logging; only the `alembic` command reads the ini's.
    cfg.attributes["configure_logging"] = False
    if url is not None:
        cfg.attributes["database_url"] = url
    return cfg


def head_revision() -> str | None:
    """The newest migration this code ships."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(url: URL, revision: str = "head") -> None:
    """Apply migrations up to `revision` (blocking; run it in a thread from async code)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: URL, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    async with engine.connect() as conn:
        has_table = await conn.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
        if not has_table:
            return None
        rev: str | None = await conn.scalar(text("SELECT version_num FROM alembic_version"))
        return rev
