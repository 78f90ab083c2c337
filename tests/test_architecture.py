"""docs/ARCHITECTURE.md stays a description that is true and short: its command list is
the command line's, it is at most 300 lines and carries no benchmark figures (those are
in benchmarks/RESULTS.md), and every decision of docs/decisions/ is a dated file of the
fixed form, listed in that folder's README."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import typer.main

from app.cli import cli

# Reads the documentation and the command line only: no server.
pytestmark = pytest.mark.one_server

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
DECISIONS = ROOT / "docs" / "decisions"
MAX_LINES = 300

COMMANDS = re.compile(r"<!-- commands: begin.*?-->(?P<table>.*?)<!-- commands: end -->", re.S)
COMMAND_CELL = re.compile(r"^\|\s*`orderlens(?P<path>(?: [a-z][a-z0-9-]*)*)`\s*\|", re.M)
# Ratios (1.21×, 0.9x), latencies and throughputs (4.6 ms, 2 µs, 180,766 rows/s, 34 MB/s).
FIGURE = re.compile(
    r"\d(?:[\d,.]*\d)?\s?(?:×|x\b)"
    r"|\d(?:[\d,.]*\d)?\s?(?:ms|µs|us)\b"
    r"|\d(?:[\d,.]*\d)?\s?(?:rows|req|requests|orders|[KMG]i?B)/s\b"
)
DECISION_NAME = re.compile(r"(?P<day>\d{4}-\d{2}-\d{2})-[a-z0-9]+(?:-[a-z0-9]+)*\.md")
DECISION_PARTS = ("Status", "Context", "Decision", "Consequences")


def documented_commands(text: str) -> set[str]:
    """The commands ARCHITECTURE's marked table names, as paths below `orderlens`."""
    block = COMMANDS.search(text)
    assert block is not None, "ARCHITECTURE.md has no <!-- commands: begin … end --> block"
    return {match["path"].strip() for match in COMMAND_CELL.finditer(block["table"])}


def registered_commands(command: Any, prefix: str = "") -> set[str]:
    """Every command and group of the Typer app, hidden ones left out, as paths."""
    found: set[str] = set()
    for name, sub in getattr(command, "commands", {}).items():
        if sub.hidden:
            continue
        path = f"{prefix} {name}".strip()
        found |= {path} | registered_commands(sub, path)
    return found


def test_the_command_list_is_the_command_lines() -> None:
    documented = documented_commands(ARCHITECTURE.read_text(encoding="utf-8"))
    registered = registered_commands(typer.main.get_command(cli))
    assert registered, "the command line registers no command"
    assert documented - registered == set(), "ARCHITECTURE names commands the CLI lacks"
    assert registered - documented == set(), "the CLI has commands ARCHITECTURE lacks"


def test_the_command_walk_sees_groups_and_leaves_hidden_ones() -> None:
    def nothing() -> None:
        """Does nothing."""

    app = typer.Typer()
    group = typer.Typer()
    app.command("serve")(nothing)
    app.command("secret", hidden=True)(nothing)
    group.command("refresh")(nothing)
    app.add_typer(group, name="fx")
    assert registered_commands(typer.main.get_command(app)) == {"serve", "fx", "fx refresh"}
    table = "<!-- commands: begin -->\n| `orderlens fx refresh` | x |\n<!-- commands: end -->"
    assert documented_commands(table) == {"fx refresh"}


def test_architecture_is_short() -> None:
    lines = ARCHITECTURE.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"ARCHITECTURE.md has {lines} lines (at most {MAX_LINES})"


def test_architecture_carries_no_benchmark_figures() -> None:
    found = [
        f"line {number}: {match[0]!r}"
        for number, line in enumerate(ARCHITECTURE.read_text(encoding="utf-8").splitlines(), 1)
        for match in FIGURE.finditer(line)
    ]
    assert found == [], "figures belong in benchmarks/RESULTS.md:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("text", "figure"),
    [
        ("1.21× psql", True),
        ("0.9x of it", True),
        ("p99 4.6 ms", True),
        ("~2 µs a value", True),
        ("180,766 rows/s", True),
        ("34 MB/s", True),
        ("quantity × price", False),
        ("items and forms", False),
        ("look back up to 10 days", False),
    ],
)
def test_the_figure_pattern(text: str, figure: bool) -> None:
    assert (FIGURE.search(text) is not None) is figure


def decision_files() -> list[Path]:
    return sorted(p for p in DECISIONS.iterdir() if p.name != "README.md")


def test_every_decision_is_a_dated_file_of_the_fixed_form() -> None:
    assert len(decision_files()) >= 15
    for path in decision_files():
        name = DECISION_NAME.fullmatch(path.name)
        assert name is not None, f"{path.name}: not YYYY-MM-DD-short-slug.md"
        date.fromisoformat(name["day"])
        headings = re.findall(r"^## (.+?)\s*$", path.read_text(encoding="utf-8"), re.M)
        assert tuple(headings) == DECISION_PARTS, f"{path.name}: parts {headings}"


def test_every_decision_is_listed_in_the_index() -> None:
    index = (DECISIONS / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(([^)#\s]+\.md)\)", index))
    files = {path.name for path in decision_files()}
    assert files - linked == set(), "decisions missing from docs/decisions/README.md"
    assert {name for name in linked if DECISION_NAME.fullmatch(name)} <= files
