"""Every relative link of the documentation leads somewhere: the file exists in the
repository, and a `#anchor` names a heading of it as GitHub makes anchors from headings.
And the user documentation sends no reader outside the repository (`../shared/…`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

# Reads the documentation only: no server, as the docs' examples (tests/test_readme.py).
pytestmark = pytest.mark.one_server

ROOT = Path(__file__).resolve().parents[1]
DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "docs" / "decisions").glob("*.md")),
    ROOT / "benchmarks" / "RESULTS.md",
]
# What a reader of a clone gets: README.md and docs/ (ARCHITECTURE.md and the decisions
# are the code's).
USER_DOCS = [
    p
    for p in DOCS
    if p.name not in {"ARCHITECTURE.md", "RESULTS.md"} and p.parent.name != "decisions"
]

FENCE = re.compile(r"^(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
# [text](target) and [text](target "title"); images too. Not inside inline code.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE_SPAN = re.compile(r"`[^`]*`")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, numbered from 1."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text, lower-cased, without punctuation (letters,
    digits, `_`, `-` and spaces kept), spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    text = text.replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        heading = HEADING.match(line)
        if not heading:
            continue
        base = slug(heading[2])
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(path: Path) -> list[tuple[int, str]]:
    return [
        (number, target)
        for number, line in prose_lines(path.read_text(encoding="utf-8"))
        for target in LINK.findall(CODE_SPAN.sub("", line))
    ]


def test_the_anchors_are_githubs() -> None:
    assert slug("Issue 26: forecasts per level on a marketplace's long tail") == (
        "issue-26-forecasts-per-level-on-a-marketplaces-long-tail"
    )
    assert slug("Warehouse handoff: Parquet feeds, sync, dbt") == (
        "warehouse-handoff-parquet-feeds-sync-dbt"
    )
    assert slug("Parquet (2026-12-03, branch `dialects`)") == "parquet-2026-12-03-branch-dialects"


@pytest.mark.parametrize("doc", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_every_relative_link_resolves(doc: Path) -> None:
    broken = []
    for number, target in links(doc):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        where = (doc.parent / file_part).resolve() if file_part else doc
        if not where.is_relative_to(ROOT) or not where.exists():
            broken.append(f"line {number}: {target} (no such file in the repository)")
        elif anchor and where.suffix == ".md" and anchor not in anchors(where):
            broken.append(f"line {number}: {target} (no heading with that anchor)")
    assert broken == [], f"{doc.relative_to(ROOT)}:\n" + "\n".join(broken)


@pytest.mark.parametrize("doc", USER_DOCS, ids=[str(p.relative_to(ROOT)) for p in USER_DOCS])
def test_the_user_docs_stay_in_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    # The assessment's specification and style guide, and its data, are not in a clone.
    for outside in (r"\.\./shared", r"\bSPEC\b", r"\bSTYLE\.md\b"):
        found = re.search(outside, text)
        assert found is None, f"{doc.relative_to(ROOT)} names {found[0]}, outside the repo"
