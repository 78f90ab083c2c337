"""Every `sh` block of the README and of the user documentation it leads to (`DOCS`)
runs as written against a live service, so that the examples a new user copies cannot
rot.

The blocks run with `bash -euo pipefail` in a folder laid out like a fresh clone after
`make run`: `data/` and `.venv/` of this checkout, and `.orderlens/` as the data
directory of a real `orderlens serve --sample data` (a subprocess, on a fresh database
of the test server, on a free port). Two things are mapped: `http://127.0.0.1:8000` in a
block becomes the service's URL, and the command line finds the service by
`.orderlens/url`, as after `make run`. A block preceded by
`<!-- not run by tests/test_readme.py: why -->` is skipped.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import URL

from tests.conftest import create_database, drop_database
from tests.helpers import free_port

# The documentation's examples: what they show does not depend on the server's version.
pytestmark = pytest.mark.one_server

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# In the order a reader meets them (a block may use what an earlier one uploaded).
DOCS = [
    README,
    *(
        ROOT / "docs" / name
        for name in (
            "CONFIGURATION.md",
            "API.md",
            "UPLOADS.md",
            "OPERATIONS.md",
            "FORECASTING.md",
            "WAREHOUSE.md",
            "DEVELOPMENT.md",
        )
    ),
]
DEFAULT_URL = "http://127.0.0.1:8000"
NOT_RUN = re.compile(r"<!-- not run by tests/test_readme\.py: (?P<why>.+?) -->")
FENCE = re.compile(r"^```(?P<lang>\S*)\s*$")
BLOCK_SECONDS = 60


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based
    text: str
    skipped: str | None  # why it is not run
    file: str = "README.md"

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def sh_blocks(markdown: str, file: str = "README.md") -> list[Block]:
    """The README's `sh` blocks, each with its line and the reason it is not run, if any."""
    blocks: list[Block] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        if fence["lang"] == "sh":
            marker = NOT_RUN.search(lines[i - 1]) if i else None
            text = "\n".join(lines[i + 1 : end]) + "\n"
            blocks.append(Block(i + 1, text, marker["why"] if marker else None, file))
        i = end + 1
    return blocks


BLOCKS = sh_blocks(README.read_text(encoding="utf-8"))
RUN = [b for b in BLOCKS if b.skipped is None]
ALL_RUN = [
    b
    for path in DOCS
    for b in sh_blocks(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    if b.skipped is None
]


def test_the_readme_has_examples_to_run() -> None:
    assert len(RUN) >= 4
    assert {b.skipped for b in BLOCKS if b.skipped}  # and says why it skips the rest
    texts = "".join(b.text for b in RUN)
    for command in (
        "KEY=$(cat .orderlens/api-key)",
        ".venv/bin/orderlens",
        "curl --fail-with-body",
    ):
        assert command in texts
    # `curl -f` hides the service's JSON error behind "The requested URL returned error".
    everywhere = "".join(b.text for b in ALL_RUN)
    assert not re.search(r"curl (-[a-zA-Z]*f|--fail)\b(?!-with-body)", everywhere)


@dataclass
class Clone:
    folder: Path
    url: str
    env: dict[str, str]


def base_env() -> dict[str, str]:
    """The user's environment, less anything Orderlens or the test run would read."""
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TERM"}
    return {k: v for k, v in os.environ.items() if k in keep}


@pytest.fixture(scope="module")
async def database(pg_server: URL) -> AsyncIterator[str]:
    """A fresh, unmigrated database: `orderlens serve` migrates it, as on a first run."""
    url = await create_database(pg_server, migrate=False)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        await drop_database(pg_server, url)


@pytest.fixture(scope="module")
def clone(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clone]:
    folder = tmp_path_factory.mktemp("fresh-clone")
    (folder / "data").symlink_to(ROOT / "data", target_is_directory=True)
    (folder / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    env = {**base_env(), "DATABASE_URL": database, "FX_PROVIDER": "ecb"}
    port = free_port()
    log = (folder / "serve.log").open("wb")
    orderlens = str(folder / ".venv" / "bin" / "orderlens")
    service = subprocess.Popen(
        [orderlens, "serve", "--port", str(port), "--sample", "data"],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_sample(url, service, folder / "serve.log")
        assert (folder / ".orderlens" / "url").read_text().strip() == url
        yield Clone(folder, url, env)
    finally:
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(timeout=30)
        finally:
            if service.poll() is None:
                service.kill()
            log.close()
    assert not (folder / ".orderlens" / "url").exists(), "serve left its URL file behind"
    # Following the docs leaves nothing a user would find untracked in their clone (what
    # `make run` makes is ignored by .gitignore: .orderlens/, the warehouse's files).
    ignored = {".orderlens", "data", ".venv", "serve.log", "warehouse"}
    left = sorted(p.name for p in folder.iterdir() if p.name not in ignored)
    assert left == [], f"the documentation's examples left {left} in the clone"


def wait_for_sample(url: str, service: subprocess.Popen[bytes], log: Path) -> None:
    """Until the service answers and the sample is in, as after `make run`."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if service.poll() is not None:
            pytest.fail(f"orderlens serve exited:\n{log.read_text()}")
        try:
            items = httpx.get(f"{url}/uploads", timeout=2).json()["items"]
            if sorted(u["kind"] for u in items if u["status"] == "succeeded") == [
                "orders",
                "products",
            ]:
                return
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.2)
    pytest.fail(f"the sample was not loaded in time:\n{log.read_text()}")


@pytest.mark.parametrize("block", ALL_RUN, ids=[b.where for b in ALL_RUN])
def test_readme_block_runs_as_written(clone: Clone, block: Block) -> None:
    script = block.text.replace(DEFAULT_URL, clone.url)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=clone.folder,
        env=clone.env,
        capture_output=True,
        text=True,
        timeout=BLOCK_SECONDS,
    )
    assert result.returncode == 0, (
        f"{block.file} line {block.line} failed ({result.returncode}):\n{block.text}\n"
        f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    )
    assert "Traceback" not in result.stderr
    assert "Warning" not in result.stderr, result.stderr


def test_the_dashboard_bookmark_shows_orders(clone: Clone) -> None:
    docs = "".join(path.read_text() for path in DOCS)
    found = re.search(r"/\?start=(\d{4}-\d\d-\d\d)&end=(\d{4}-\d\d-\d\d)", docs)
    assert found, "the documentation's bookmark example is gone"
    start, end = found.groups()
    kpis = httpx.get(f"{clone.url}/kpis", params={"start": start, "end": end}).json()
    assert kpis["max_order_date"] is not None, f"no orders from {start} to {end}"
