"""A newcomer's first `make run`: from a fresh clone, with empty package caches, to the
service answering `/readyz` and to its last start-up line (the key), timed.

    .venv/bin/python benchmarks/install/first_run.py --ref HEAD --ref 104a56e --runs 2

Each `--ref` is cloned from this repository into a temporary folder, and `make run` is
started there with caches of its own that start empty (pip's, uv's; uv not on PATH, so
the Makefile installs it first, as on a machine without it). The refs run alternately,
in the same sitting. Nothing is left behind: the clone, its virtual environment, its
embedded PostgreSQL and the caches are removed after each run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_SECONDS = 900


def first_run(ref: str, port: int) -> dict[str, float | str]:
    with tempfile.TemporaryDirectory(prefix="orderlens-first-run-") as tmp:
        clone = Path(tmp) / "orderlens"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        subprocess.run(["git", "-C", str(clone), "checkout", "-q", ref], check=True)
        env = {
            **os.environ,
            "PIP_CACHE_DIR": f"{tmp}/pip-cache",
            "UV_CACHE_DIR": f"{tmp}/uv-cache",
            # No uv on PATH: the Makefile bootstraps it, as on a machine without one.
            "PATH": ":".join(
                d for d in os.environ["PATH"].split(":") if not (Path(d) / "uv").exists()
            ),
        }
        env.pop("DATABASE_URL", None)
        env.pop("VIRTUAL_ENV", None)
        started = time.monotonic()
        make = subprocess.Popen(
            ["make", "run", f"PORT={port}"],
            cwd=clone,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        lines: list[tuple[float, str]] = []
        reader = threading.Thread(target=_read, args=(make, started, lines), daemon=True)
        reader.start()
        ready = key = None
        try:
            while time.monotonic() - started < DEADLINE_SECONDS and make.poll() is None:
                if ready is None and _answers(port):
                    ready = time.monotonic() - started
                key = next((t for t, line in lines if line.startswith("API key")), None)
                if key is not None:
                    break
                time.sleep(0.2)
        finally:
            _stop(make)
            reader.join(timeout=10)
        installed = next((t for t, line in lines if line.startswith("touch .venv")), None)
        if ready is None or key is None:
            tail = "\n".join(line for _, line in lines[-20:])
            raise SystemExit(f"{ref}: make run did not get to its key:\n{tail}")
        return {"ref": ref, "installed": installed or float("nan"), "ready": ready, "key": key}


def _stop(make: subprocess.Popen[str]) -> None:
    """SIGTERM to make and what it started; back once every one of them has exited (the
    embedded PostgreSQL stopped, the port free for the next run)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(make.pid, signal.SIGTERM)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        make.poll()  # reaped, or make itself would stay in its group as a zombie
        try:
            os.killpg(make.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(make.pid, signal.SIGKILL)
    make.wait(timeout=10)


def _read(make: subprocess.Popen[str], started: float, lines: list[tuple[float, str]]) -> None:
    assert make.stdout is not None
    for line in make.stdout:
        lines.append((time.monotonic() - started, line.rstrip("\n")))


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", action="append", required=True, help="a commit to time")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--port", type=int, default=8931)
    args = parser.parse_args()
    if shutil.which("make") is None:
        raise SystemExit("make is needed")
    for run in range(1, args.runs + 1):
        for ref in args.ref:
            r = first_run(ref, args.port)
            print(
                f"run {run} {r['ref']}: installed {r['installed']:.1f} s,"
                f" /readyz {r['ready']:.1f} s, key printed {r['key']:.1f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
