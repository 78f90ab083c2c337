"""`orderlens sync`: the feeds into DuckDB through dlt, incrementally, once per key."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from app import cli
from app.exports import sync
from app.exports.feeds import FeedName
from tests.conftest import API_KEY
from tests.exports.conftest import CODED_ORDERS, CODED_PRODUCTS, RAW, TEXT, post

SERVICE_LOG = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ app\.")


def counts(path: Path) -> dict[str, int]:
    with duckdb.connect(str(path), read_only=True) as conn:
        tallies = {}
        for feed in FeedName:
            row = conn.execute(f"SELECT count(*) FROM {RAW}.{feed.value}").fetchone()
            assert row is not None
            tallies[feed.value] = int(row[0])
        return tallies


def run(base: str, dest: str) -> dict[str, int]:
    outcome = sync.sync(sync.Service(base), dest, dataset=RAW)
    assert outcome.unreported is None
    return outcome.rows


def statuses(base: str) -> dict[str, str]:
    """The status of each feed's newest read in /syncs."""
    items = httpx.get(f"{base}/syncs", timeout=30).json()["items"]
    newest: dict[str, str] = {}
    for item in items:  # newest first
        newest.setdefault(item["feed"], item["status"])
    return newest


@pytest.mark.one_server
class TestSyncToDuckDB:
    async def test_incremental_and_once_per_key(self, served: str, tmp_path: Path) -> None:
        path = tmp_path / "w.duckdb"
        dest = f"duckdb:///{path}"  # relative form: duckdb:///rel; absolute: four slashes
        first = await asyncio.to_thread(run, served, "duckdb:///" + str(path))
        assert first["orders"] == 300 and first["products"] == 20
        loaded = counts(path)
        assert loaded["orders"] == 300
        again = await asyncio.to_thread(run, served, dest)
        # Nothing new: nothing loaded. But FX rates' cursor is a snapshot's xmin (README,
        # "Warehouse handoff"): a rate written while any other transaction on the server
        # was open (another test worker's) comes again, merged on its key.
        exact = {feed: rows for feed, rows in again.items() if feed != "fx_rates"}
        assert exact == dict.fromkeys(exact, 0)
        assert first["product_prices"] == 20
        assert again["fx_rates"] <= first["fx_rates"]
        assert counts(path) == loaded  # every row once
        post(served, "orders", b"id,product_id,quantity,created_date\n9001,1,2,2024-12-01\n")
        post(served, "products", b"id,name,category,price\n1,Product_1,Shoes,1.00\n", "update")
        third = await asyncio.to_thread(run, served, dest)
        assert third["orders"] == 1 and third["products"] == 1
        tallies = counts(path)
        assert tallies["orders"] == tallies["order_full_information"] == 301
        with duckdb.connect(str(path), read_only=True) as conn:
            [(price,)] = conn.execute(
                "SELECT price FROM orderlens_raw.products WHERE product_id = 1"
            ).fetchall()
        assert str(price) == "1.00"

    async def test_price_history_merges_on_product_and_day(
        self, served: str, tmp_path: Path
    ) -> None:
        """A dated price before the sample's ends where the sample's begins: both of
        product 1's rows come again, and the table keeps one row per (product, day)."""
        path = tmp_path / "w.duckdb"
        dest = "duckdb:///" + str(path)
        await asyncio.to_thread(run, served, dest)
        dated = b"id,name,category,price,effective_from\n1,Product_1,Shoes,99.00,2024-11-15\n"
        post(served, "products", dated, "update")
        again = await asyncio.to_thread(run, served, dest)
        assert again["product_prices"] == 2
        with duckdb.connect(str(path), read_only=True) as conn:
            rows = conn.execute(
                "SELECT product_id, valid_from, valid_to, price FROM orderlens_raw.product_prices"
                " ORDER BY product_id, valid_from"
            ).fetchall()
        assert len(rows) == 21 == len({(r[0], r[1]) for r in rows})
        first, sample = [r for r in rows if r[0] == 1]
        assert (str(first[1]), first[2], str(first[3])) == ("2024-11-15", sample[1], "99.00")
        assert sample[2] is None
        assert sum(r[2] is None for r in rows) == 20  # one open price per product

    async def test_a_sync_that_dies_half_way_loads_every_row_once_when_run_again(
        self, served: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = tmp_path / "w.duckdb"
        dest = "duckdb:///" + str(path)
        await asyncio.to_thread(run, served, dest)
        post(served, "orders", b"id,product_id,quantity,created_date\n9001,1,2,2024-12-01\n")
        real = sync.fetch

        def dies_at_rejects(*args: object) -> sync.Fetched:
            if args[1] is FeedName.REJECTS:
                raise sync.SyncError("killed")
            return real(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(sync, "fetch", dies_at_rejects)
        with pytest.raises(sync.SyncError):
            await asyncio.to_thread(run, served, dest)
        # The feeds it read were sent, never committed: /syncs says so, not "finished".
        died = statuses(served)
        assert {died[f] for f in ("orders", "products", "product_prices")} == {"sent"}
        monkeypatch.setattr(sync, "fetch", real)
        rerun = await asyncio.to_thread(run, served, dest)
        assert rerun["orders"] == 1
        assert counts(path)["orders"] == 301
        assert set(statuses(served).values()) == {"finished"}  # the newest read of each

    async def test_an_unreachable_destination_fails_in_one_line_and_reads_nothing(
        self, served: str
    ) -> None:
        with pytest.raises(sync.SyncError) as caught:
            await asyncio.to_thread(run, served, "postgresql://nobody:secret@127.0.0.1:1/warehouse")
        message = str(caught.value)
        assert "\n" not in message and "cannot reach postgres 127.0.0.1:1" in message
        assert "secret" not in message
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{served}/syncs")).json()["items"] == []


CODE_COLUMNS = {
    "orders": ("order_code", "product_code"),
    "products": ("product_code",),
    "product_prices": ("product_code",),
    "order_full_information": ("order_code", "product_code"),
}


def raw(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.one_server
class TestTextIds:
    async def test_codes_come_through_beside_the_keys(self, served: str, tmp_path: Path) -> None:
        path = tmp_path / "w.duckdb"
        dest = "duckdb:///" + str(path)
        await asyncio.to_thread(run, served, dest)
        # The sample alone: every code column is there, and null.
        for table, columns in CODE_COLUMNS.items():
            for column in columns:
                [(rows, codes)] = raw(
                    path, f"SELECT count(*), count({column}) FROM orderlens_raw.{table}"
                )
                assert rows > 0 and codes == 0, (table, column)
        post(served, "products", CODED_PRODUCTS, params=TEXT)
        post(served, "orders", CODED_ORDERS, params=TEXT)
        again = await asyncio.to_thread(run, served, dest)
        assert again["orders"] == 3 and again["products"] == 2
        products = raw(
            path,
            "SELECT product_id, product_code FROM orderlens_raw.products"
            " WHERE product_id < 0 OR product_id = 71053 ORDER BY product_id",
        )
        assert [(key < 0, code) for key, code in products] == [(True, "85123A"), (False, None)]
        heart = products[0][0]
        assert raw(
            path,
            "SELECT order_id < 0, order_code, product_id, product_code, quantity"
            " FROM orderlens_raw.orders WHERE order_id < 0 OR order_id > 9000 ORDER BY quantity",
        ) == [
            (False, None, 71053, None, 1),
            (True, "L-1", heart, "85123A", 2),
            (True, "L-3", heart, "85123A", 60),
        ]
        assert raw(
            path,
            "SELECT order_code, product_code, product_name FROM"
            " orderlens_raw.order_full_information WHERE order_id < 0 OR order_id > 9000"
            " ORDER BY quantity",
        ) == [(None, None, "Lantern"), ("L-1", "85123A", "Heart"), ("L-3", "85123A", "Heart")]
        assert raw(
            path, "SELECT product_code FROM orderlens_raw.product_prices WHERE product_id < 0"
        ) == [("85123A",)]
        # The keys are still the integers they were: what dlt merges on.
        types = dict(
            raw(
                path,
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = 'orderlens_raw' AND table_name = 'orders'",
            )
        )
        assert (types["order_id"], types["product_id"], types["order_code"]) == (
            "BIGINT",
            "BIGINT",
            "VARCHAR",
        )

    async def test_a_warehouse_synced_before_codes_gains_them_with_nothing_to_load(
        self, served: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Loaded from feeds without code columns (a service before text ids), the next
        sync, with no row changed, still adds the columns (empty files carry the schema),
        so the dbt models that read them build."""
        path = tmp_path / "w.duckdb"
        dest = "duckdb:///" + str(path)
        real = sync._batches

        def without_codes(file: Path, loaded_at: dt.datetime) -> Iterator[pa.Table]:
            for table in real(file, loaded_at):
                yield table.drop_columns(
                    [n for n in table.column_names if n in ("order_code", "product_code")]
                )

        monkeypatch.setattr(sync, "_batches", without_codes)
        await asyncio.to_thread(run, served, dest)
        assert not raw(
            path,
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'orderlens_raw' AND column_name IN ('order_code', 'product_code')",
        )
        monkeypatch.setattr(sync, "_batches", real)
        again = await asyncio.to_thread(run, served, dest)
        assert again["orders"] == 0
        for table, columns in CODE_COLUMNS.items():
            for column in columns:
                [(rows, codes)] = raw(
                    path, f"SELECT count(*), count({column}) FROM orderlens_raw.{table}"
                )
                assert rows > 0 and codes == 0, (table, column)


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_a_sync_warns_of_nothing(served: str, tmp_path: Path) -> None:
    """The feeds' keys are never null in their files, as dlt's merge keys say: no column
    hints that differ, no warning (there were five to twelve a sync)."""
    kept = Kept()
    dlt_log = logging.getLogger("dlt")
    dlt_log.addHandler(kept)
    try:
        await asyncio.to_thread(run, served, f"duckdb:///{tmp_path / 'w.duckdb'}")
    finally:
        dlt_log.removeHandler(kept)
    assert [r.getMessage()[:120] for r in kept.records] == []


class TestConsumers:
    async def test_the_command_names_its_reads_and_freshness_lists_it(
        self, served: str, tmp_path: Path
    ) -> None:
        """`orderlens sync --consumer` names every read it makes (and the dataset it
        loads into) in /syncs; /freshness then says how old that copy is. Without the
        option the name is `sync@` and the machine's."""
        dest = f"duckdb:///{tmp_path / 'w.duckdb'}"
        for args in (["--consumer", "warehouse-a"], []):
            result = await asyncio.to_thread(
                CliRunner().invoke, cli.cli, ["sync", "--to", dest, "--url", served, *args]
            )
            assert result.exit_code == 0, result.output
        async with httpx.AsyncClient() as client:
            items = (await client.get(f"{served}/syncs", params={"limit": 1000})).json()["items"]
            freshness = (await client.get(f"{served}/freshness")).json()
            # Each into the service's instance id, its dataset unless given another.
            dataset = (await client.get(f"{served}/instance")).json()["instance_id"]
        assert re.fullmatch(r"orderlens_[0-9a-f]{10}", dataset)
        named = {(i["consumer"], i["dataset"]) for i in items}
        assert named == {("warehouse-a", dataset), (sync.default_consumer(), dataset)}
        assert len(items) == 2 * len(FeedName)
        assert sync.default_consumer().startswith("sync@")
        consumers = {c["consumer"]: c for c in freshness["consumers"]}
        assert set(consumers) == {"warehouse-a", sync.default_consumer()}
        assert not any(c["stale"] for c in consumers.values())


class TestDatasets:
    """Where a sync loads: `--dataset` (ORDERLENS_DATASET), the one a bigquery:// URL
    names, else the service's instance id; a name no warehouse takes is refused before
    anything is read."""

    async def test_the_dataset_a_sync_would_load_into(
        self, served: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async with httpx.AsyncClient() as client:
            instance = (await client.get(f"{served}/instance")).json()["instance_id"]

        def show(*args: str) -> tuple[int, str]:
            command = ["sync", "--url", served, "--show-dataset", *args]
            result = CliRunner().invoke(cli.cli, command)
            # The service runs in this process: its log lines share the captured stderr.
            said = [x for x in result.stderr.splitlines() if not SERVICE_LOG.match(x)]
            return result.exit_code, (result.stdout + "\n".join(said)).strip()

        assert await asyncio.to_thread(show) == (0, instance)
        assert await asyncio.to_thread(show, "--dataset", "shop_eu") == (0, "shop_eu")
        monkeypatch.setenv("ORDERLENS_DATASET", "from_env")
        assert await asyncio.to_thread(show) == (0, "from_env")
        assert await asyncio.to_thread(show, "--to", "bigquery://p/raw") == (1, (
            "the destination names dataset raw, and --dataset from_env"
        ))  # fmt: skip
        monkeypatch.delenv("ORDERLENS_DATASET")
        assert await asyncio.to_thread(show, "--to", "bigquery://p/raw") == (0, "raw")
        code, said = await asyncio.to_thread(show, "--dataset", "Shop-EU")
        assert code == 1 and said.startswith("'Shop-EU' cannot name a dataset"), said
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{served}/syncs")).json()["items"] == []

    async def test_a_name_no_warehouse_takes_reads_nothing(
        self, served: str, tmp_path: Path
    ) -> None:
        for bad in ("1st", "a" * 64, "raw; drop table x", "Raw", "raw\n"):
            with pytest.raises(sync.SyncError, match="cannot name a dataset"):
                await asyncio.to_thread(
                    sync.sync, sync.Service(served), f"duckdb:///{tmp_path / 'w'}", dataset=bad
                )
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{served}/syncs")).json()["items"] == []
        assert not (tmp_path / "w").exists()


class TestUnreachable:
    """Whatever stops a destination, the user reads one line and the source is untouched."""

    @pytest.mark.parametrize(
        "dest",
        [
            "postgresql://nobody:secret@127.0.0.1:1/warehouse",  # nothing listens
            "duckdb:////dev/null/w.duckdb",  # its folder cannot be made
            "file:///dev/null/lake",
            "bigquery://project/raw",  # no Google credentials here
        ],
    )
    async def test_the_command_says_one_line_and_reads_nothing(
        self, served: str, dest: str
    ) -> None:
        result = await asyncio.to_thread(
            CliRunner().invoke, cli.cli, ["sync", "--to", dest, "--url", served]
        )
        assert result.exit_code == 1, result.output
        # The service runs in this process: its log lines share the captured stderr.
        lines = [x for x in result.stderr.splitlines() if not SERVICE_LOG.match(x)]
        assert len(lines) == 1, result.stderr
        [line] = lines
        assert line.startswith("sync failed: ")
        assert "secret" not in line and "Traceback" not in line
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{served}/syncs")).json()["items"] == []

    async def test_a_failed_sync_is_told_to_the_alerts_with_a_write_key(self, served: str) -> None:
        args = ["sync", "--to", "duckdb:////dev/null/w.duckdb", "--url", served]
        result = await asyncio.to_thread(
            CliRunner().invoke, cli.cli, [*args, "--api-key", API_KEY, "--consumer", "wh"]
        )
        assert result.exit_code == 1
        async with httpx.AsyncClient() as client:
            # (the sample's upload raised none: its month has no mean to measure spikes by)
            told = (await client.get(f"{served}/alerts")).json()["items"]
        assert [(a["event"], a["subject"]) for a in told] == [("step_failed", "sync wh")]
        assert "cannot reach duckdb" in told[0]["message"]


class TestDestinations:
    def test_parsed(self) -> None:
        assert sync.parse_destination("duckdb:///warehouse/o.duckdb").target == "warehouse/o.duckdb"
        assert sync.parse_destination("duckdb:////abs/o.duckdb").target == "/abs/o.duckdb"
        big = sync.parse_destination("bigquery://my-project/raw")
        assert (big.kind, big.target, big.dataset) == ("bigquery", "my-project", "raw")
        assert sync.parse_destination("file:///tmp/lake").kind == "filesystem"
        assert sync.parse_destination("postgresql://u@h/db").kind == "postgres"

    @pytest.mark.parametrize(
        "bad", ["duckdb://", "mysql://h/db", "bigquery://p", "file://rel", "postgresql://h"]
    )
    def test_refused(self, bad: str) -> None:
        with pytest.raises(sync.SyncError):
            sync.parse_destination(bad)


@pytest.mark.one_server
class TestSyncToFiles:
    async def test_delta_tables_keep_one_row_per_key(self, served: str, tmp_path: Path) -> None:
        from deltalake import DeltaTable

        dest = f"file://{tmp_path / 'lake'}"
        await asyncio.to_thread(run, served, dest)
        post(served, "products", b"id,name,category,price\n1,Product_1,Shoes,1.00\n", "update")
        second = await asyncio.to_thread(run, served, dest)
        assert second["products"] == 1
        products = DeltaTable(str(tmp_path / "lake" / "orderlens_raw" / "products"))
        rows = products.to_pyarrow_table().to_pylist()
        assert len(rows) == 20 == len({r["product_id"] for r in rows})
        assert [str(r["price"]) for r in rows if r["product_id"] == 1] == ["1.00"]
        dated = b"id,name,category,price,effective_from\n1,Product_1,Shoes,99.00,2024-11-15\n"
        post(served, "products", dated, "update")
        await asyncio.to_thread(run, served, dest)
        prices = DeltaTable(str(tmp_path / "lake" / "orderlens_raw" / "product_prices"))
        rows = prices.to_pyarrow_table().to_pylist()
        assert len(rows) == 21 == len({(r["product_id"], r["valid_from"]) for r in rows})
        assert sum(r["valid_to"] is None for r in rows) == 20


class TestReadsFinishWhenCommitted:
    """A sync's reads are `finished` in /syncs once the destination committed them (the
    sync reports back); a reader that does not report is finished when sent, as before."""

    async def test_reported_after_the_load(self, served: str, tmp_path: Path) -> None:
        await asyncio.to_thread(run, served, f"duckdb:///{tmp_path / 'w.duckdb'}")
        async with httpx.AsyncClient() as client:
            items = (await client.get(f"{served}/syncs", timeout=30)).json()["items"]
        assert len(items) == len(FeedName)
        for item in items:
            assert (item["reports"], item["status"]) == (True, "finished")
            assert item["read_at"] <= item["sent_at"] <= item["finished_at"]

    async def test_only_the_reader_reports_its_read(self, served: str) -> None:
        async with httpx.AsyncClient(base_url=served, timeout=30) as client:
            plain = await client.get("/exports/products.parquet")
            asked = await client.get("/exports/products.parquet", params={"report": "true"})
            assert "X-Sync-Token" not in plain.headers
            ids = [int(r.headers["X-Sync-Id"]) for r in (plain, asked)]
            by_id = {i["sync_id"]: i for i in (await client.get("/syncs")).json()["items"]}
            assert [by_id[i]["status"] for i in ids] == ["finished", "sent"]
            token = asked.headers["X-Sync-Token"]
            # Another token, or a read that did not ask to report: nothing finishes.
            for wrong in ({"sync_id": ids[1], "token": token + "x"},
                          {"sync_id": ids[0], "token": token},
                          {"sync_id": 999_999, "token": token}):  # fmt: skip
                answer = await client.post("/syncs/finished", json={"reads": [wrong]})
                assert answer.json() == {"finished": []}, wrong
            # Its own token, once.
            mine = {"reads": [{"sync_id": ids[1], "token": token}]}
            first = await client.post("/syncs/finished", json=mine)
            again = await client.post("/syncs/finished", json=mine)
            assert (first.json(), again.json()) == ({"finished": [ids[1]]}, {"finished": []})
            by_id = {i["sync_id"]: i for i in (await client.get("/syncs")).json()["items"]}
            assert by_id[ids[1]]["status"] == "finished"
            empty = await client.post("/syncs/finished", json={"reads": []})
            assert empty.status_code == 422


@pytest.mark.one_server
class TestStopping:
    """SIGTERM stops a sync at once, its working folder removed; a folder a killed sync
    left is removed by the next one, once its process is gone."""

    def test_sigterm_while_reading(self, tmp_path: Path) -> None:
        # A service that takes the request and never answers: the sync waits in a read.
        with socket.socket() as stalled:
            stalled.bind(("127.0.0.1", 0))
            stalled.listen()
            port = stalled.getsockname()[1]
            temp = tmp_path / "tmp"
            temp.mkdir()
            command = [sys.executable, "-m", "app.cli", "sync", "--url"]
            command += [f"http://127.0.0.1:{port}", "--to", f"duckdb:///{tmp_path / 'w.duckdb'}"]
            command += ["--dataset", RAW]
            env = {**os.environ, "TMPDIR": str(temp)}
            process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
            try:
                connection, _ = stalled.accept()  # the sync's first read has begun
                with connection:
                    assert next(p.name for p in temp.iterdir()).startswith(sync.WORK_PREFIX)
                    started = time.monotonic()
                    process.send_signal(signal.SIGTERM)
                    _, err = process.communicate(timeout=30)
                    stopped_in = time.monotonic() - started
            finally:
                process.kill()
        assert process.returncode == 128 + signal.SIGTERM, err
        assert "stopped by SIGTERM" in err
        assert stopped_in < 5
        assert list(temp.iterdir()) == []

    def test_a_stop_that_surfaces_as_another_error_is_a_stop(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """SIGTERM inside dlt's work can surface as some other error (an import it cut
        short); the sync says it was stopped all the same, and its folder is gone."""

        def cut_short(*_args: object) -> sync.Fetched:
            stopped = False
            try:
                os.kill(os.getpid(), signal.SIGTERM)  # the sync's handler raises here
                time.sleep(5)
            except sync.SyncStopped:
                stopped = True
            assert stopped, "SIGTERM did not stop the sync"
            # What a cut-short import says later, with no trace of the stop.
            raise AttributeError("partially initialized module 'pandas'")

        monkeypatch.setattr(sync, "fetch", cut_short)
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
        before = signal.getsignal(signal.SIGTERM)
        with pytest.raises(sync.SyncStopped) as stopped:
            sync.sync(
                sync.Service("http://127.0.0.1:9"),
                f"duckdb:///{tmp_path / 'w.duckdb'}",
                dataset=RAW,
            )
        assert stopped.value.signum == signal.SIGTERM
        assert not list(tmp_path.glob(f"{sync.WORK_PREFIX}*"))
        assert signal.getsignal(signal.SIGTERM) is before  # the sync's handler only while it ran

    def test_leftovers_of_a_killed_sync(self, tmp_path: Path) -> None:
        gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
        folders = {}
        for name, owner in (("killed", gone.stdout.strip()), ("running", str(os.getppid()))):
            folders[name] = tmp_path / f"{sync.WORK_PREFIX}{name}"
            (folders[name] / "pipelines").mkdir(parents=True)
            (folders[name] / sync.OWNER_FILE).write_text(owner)
        folders["no owner"] = tmp_path / f"{sync.WORK_PREFIX}being-made"
        folders["no owner"].mkdir()
        folders["not a sync's"] = tmp_path / "something-else"
        folders["not a sync's"].mkdir()
        assert sync.remove_leftovers(tmp_path) == [folders["killed"]]
        assert {p.name for p in tmp_path.iterdir()} == {
            folders[k].name for k in ("running", "no owner", "not a sync's")
        }
