"""The warehouse's dbt project (warehouse/): one way to run a dbt command on it, in this
process (seconds; a subprocess would add dbt's start-up), with the target's settings in
the environment for the command's length (warehouse/profiles.yml reads them there)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[2] / "warehouse"


def invoke(command: list[str], target: str, env: dict[str, str], work: Path) -> Any:
    """`dbt COMMAND` on the project for `target` (a profile output), its target and log
    folders under `work` (absolute: dbt reads a relative target path from the project's
    folder): dbt's dbtRunnerResult."""
    from dbt.cli.main import dbtRunner

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        args = [*command, "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT)]
        work = work.resolve()
        args += ["--target", target, "--target-path", str(work / "target")]
        args += ["--log-path", str(work / "logs"), "--quiet"]
        return dbtRunner().invoke(args)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
