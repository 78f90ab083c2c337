"""Released like real software: one version, a licence, and a changelog entry for it."""

from __future__ import annotations

import tomllib

from app import __version__
from app.db import ROOT


def test_the_version_is_one_and_has_a_changelog_entry() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["version"] == __version__
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{__version__}] - " in changelog, "CHANGELOG.md has no entry for this version"
    assert (ROOT / project["license"]["file"]).read_text().startswith("MIT License")
