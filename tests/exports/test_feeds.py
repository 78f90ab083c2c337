"""The Parquet change feeds: types, cursors, what an upload puts in which feed."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq

from app.kit.pagination import encode_cursor
from tests.conftest import require_online_retail
from tests.helpers import assert_error, post_multipart, upload

PRODUCTS = (
    'id,name,category,price\n1,Lamp,Home,10.50\n2,Desk,Office,200.00\n3,"A, b",Home,1.99\n'
    '4,"Two\nlines, ""quoted""",Home,0.01\n'
)
ORDERS = (
    "id,product_id,quantity,created_date\n1,1,2,2024-01-01\n2,2,1,2024-01-02\n3,1,5,2024-01-03\n"
)


async def read(
    api: httpx.AsyncClient, feed: str, since: str | None = None, **params: Any
) -> tuple[pa.Table, str]:
    if since is not None:
        params["since"] = since
    response = await api.get(f"/exports/{feed}.parquet", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.apache.parquet"
    return pq.read_table(io.BytesIO(response.content)), response.headers["x-next-cursor"]


async def load(api: httpx.AsyncClient, kind: str, body: str | bytes, **kw: Any) -> dict[str, Any]:
    response = await upload(api, kind, body, **kw)
    assert response.status_code == 201, response.text
    report: dict[str, Any] = response.json()
    return report


class TestParquetFiles:
    async def test_types_are_the_warehouse_ones(self, api: httpx.AsyncClient) -> None:
        await load(api, "products", PRODUCTS)
        await load(api, "orders", ORDERS)
        orders, _ = await read(api, "orders")
        assert orders.schema.field("order_id").type == pa.int64()
        # Keys are never null, and say so (a loader merging on them checks).
        assert not orders.schema.field("order_id").nullable
        assert orders.schema.field("unit_price").nullable
        assert orders.schema.field("order_created_date").type == pa.date32()
        assert sorted(orders.column("order_id").to_pylist()) == [1, 2, 3]
        products, _ = await read(api, "products")
        assert products.schema.field("price").type == pa.decimal128(12, 2)
        by_id = {r["product_id"]: r for r in products.to_pylist()}
        assert by_id[3]["name"] == "A, b"
        assert by_id[4]["name"] == 'Two\nlines, "quoted"'
        assert by_id[1]["price"] == Decimal("10.50")
        ofi, _ = await read(api, "order_full_information")
        totals = {r["order_id"]: r["total_price"] for r in ofi.to_pylist()}
        assert totals == {1: Decimal("21.00"), 2: Decimal("200.00"), 3: Decimal("52.50")}

    async def test_merged_rows_equal_the_csv_export(self, api: httpx.AsyncClient) -> None:
        """The Parquet feed joins products and computes totals in Arrow; the CSV export in
        SQL. Same rows, same cents, up to the largest total the types hold."""
        await load(api, "products", PRODUCTS + "5,Safe,Office,9999999999.99\n")
        await load(api, "orders", ORDERS + "4,5,2147483647,2024-01-04\n5,4,3,2024-01-04\n")
        ofi, _ = await read(api, "order_full_information")
        response = await api.get("/exports/order_full_information.csv")
        _header, *lines = csv.reader(io.StringIO(response.text))
        want = sorted(
            (date.fromisoformat(day), int(order_id), name, int(quantity), Decimal(total))
            for day, order_id, name, quantity, total in lines
        )
        got = sorted(
            (
                r["order_created_date"],
                r["order_id"],
                r["product_name"],
                r["quantity"],
                r["total_price"],
            )
            for r in ofi.to_pylist()
        )
        assert got == want
        assert ofi.schema.field("total_price").type == pa.decimal128(22, 2)
        assert got[3][4] == Decimal("9999999999.99") * 2147483647

    async def test_an_empty_feed_is_a_valid_file_with_its_schema(
        self, api: httpx.AsyncClient
    ) -> None:
        for feed in ("orders", "products", "order_full_information", "rejects"):
            table, cursor = await read(api, feed)
            assert table.num_rows == 0
            assert (
                "order_id" in table.schema.names
                or "product_id" in table.schema.names
                or ("row_number" in table.schema.names)
            )
            assert cursor

    async def test_any_accept_header_gets_parquet(self, api: httpx.AsyncClient) -> None:
        for accept in ("*/*", "application/vnd.apache.parquet", "text/csv", "application/json"):
            response = await api.get("/exports/orders.parquet", headers={"Accept": accept})
            assert response.status_code == 200
            assert response.content[:4] == b"PAR1"

    async def test_row_groups_and_compression(self, api: httpx.AsyncClient) -> None:
        await load(api, "products", PRODUCTS)
        await load(api, "orders", ORDERS)
        response = await api.get("/exports/orders.parquet")
        meta = pq.ParquetFile(io.BytesIO(response.content)).metadata
        assert meta.num_row_groups == 1
        assert meta.row_group(0).column(0).compression == "ZSTD"

    async def test_period_on_orders(self, api: httpx.AsyncClient) -> None:
        await load(api, "products", PRODUCTS)
        await load(api, "orders", ORDERS)
        table, _ = await read(api, "orders", start="2024-01-02", end="2024-01-03")
        assert sorted(table.column("order_id").to_pylist()) == [2, 3]
        table, _ = await read(api, "order_full_information", end="2024-01-01")
        assert table.column("order_id").to_pylist() == [1]

    async def test_rejects_feed(self, api: httpx.AsyncClient) -> None:
        await load(api, "products", PRODUCTS)
        report = await load(api, "orders", ORDERS + "4,99,1,2024-01-01\n")
        table, _ = await read(api, "rejects")
        [row] = table.to_pylist()
        assert row["upload_id"] == report["upload_id"]
        assert row["error_code"] == "unknown_product"
        assert row["fields"] == '["4","99","1","2024-01-01"]'

    async def test_fx_rates_feed_fetches_a_rate_when_none_is_cached(
        self, api: httpx.AsyncClient
    ) -> None:
        table, _ = await read(api, "fx_rates")
        [row] = table.to_pylist()
        assert (row["base"], row["quote"], row["kind"]) == ("BRL", "USD", "latest")
        assert row["rate"] == Decimal("0.184965")


class TestCursors:
    async def test_since_gives_only_what_changed(self, api: httpx.AsyncClient) -> None:
        await load(api, "products", PRODUCTS)
        await load(api, "orders", ORDERS)
        _, cursor = await read(api, "orders")
        table, again = await read(api, "orders", cursor)
        assert table.num_rows == 0
        assert again == cursor
        await load(api, "orders", "id,product_id,quantity,created_date\n9,2,1,2024-02-01\n")
        table, _ = await read(api, "orders", cursor)
        assert table.column("order_id").to_pylist() == [9]

    async def test_unchanged_rows_are_not_restamped(self, api: httpx.AsyncClient) -> None:
        await load(api, "products", PRODUCTS)
        await load(api, "orders", ORDERS)
        _, orders_cursor = await read(api, "orders")
        _, products_cursor = await read(api, "products")
        report = await load(api, "orders", ORDERS)
        assert report["rows_unchanged"] == 3
        await load(api, "products", PRODUCTS)
        assert (await read(api, "orders", orders_cursor))[0].num_rows == 0
        assert (await read(api, "products", products_cursor))[0].num_rows == 0

    async def test_a_price_rewrite_moves_products_and_totals_not_orders(
        self, api: httpx.AsyncClient
    ) -> None:
        await load(api, "products", PRODUCTS)
        await load(api, "orders", ORDERS)
        cursors = {
            f: (await read(api, f))[1] for f in ("orders", "products", "order_full_information")
        }
        report = await load(
            api, "products", "id,name,category,price\n1,Lamp,Home,11.00\n", on_conflict="update"
        )
        assert report["rows_updated"] == 1
        products, _ = await read(api, "products", cursors["products"])
        assert products.to_pylist()[0]["product_id"] == 1
        assert products.to_pylist()[0]["upload_id"] == report["upload_id"]
        orders, _ = await read(api, "orders", cursors["orders"])
        assert orders.num_rows == 0
        ofi, _ = await read(api, "order_full_information", cursors["order_full_information"])
        totals = {r["order_id"]: r["total_price"] for r in ofi.to_pylist()}
        assert totals == {1: Decimal("22.00"), 3: Decimal("55.00")}

    async def test_an_updated_order_is_in_the_feed_with_its_new_values(
        self, api: httpx.AsyncClient
    ) -> None:
        await load(api, "products", PRODUCTS)
        await load(api, "orders", ORDERS)
        _, cursor = await read(api, "orders")
        body = "id,product_id,quantity,created_date\n2,2,7,2024-01-02\n3,1,5,2024-01-03\n"
        await load(api, "orders", body, on_conflict="update")
        table, _ = await read(api, "orders", cursor)
        assert [(r["order_id"], r["quantity"]) for r in table.to_pylist()] == [(2, 7)]

    async def test_bad_cursors_are_422(self, api: httpx.AsyncClient) -> None:
        _, products_cursor = await read(api, "products")
        too_long = encode_cursor(["orders", 1]) + "A" * 600
        for bad in ("nonsense", "", "eyJhIjoxfQ", products_cursor, too_long):
            response = await api.get("/exports/orders.parquet", params={"since": bad})
            assert_error(response, 422, "invalid_cursor")
        ahead = encode_cursor(["orders", 10**9])  # well formed, never given out
        assert_error(
            await api.get("/exports/orders.parquet", params={"since": ahead}), 422, "invalid_cursor"
        )
        negative = encode_cursor(["orders", -1])
        assert_error(
            await api.get("/exports/orders.parquet", params={"since": negative}),
            422,
            "invalid_cursor",
        )

    async def test_unknown_export_is_404(self, api: httpx.AsyncClient) -> None:
        assert_error(await api.get("/exports/nope.parquet"), 404, "not_found")


class TestSyncLog:
    async def test_every_read_is_listed(self, api: httpx.AsyncClient) -> None:
        await load(api, "products", PRODUCTS)
        _, cursor = await read(api, "products")
        await read(api, "products", cursor)
        items = (await api.get("/syncs")).json()["items"]
        assert [(i["feed"], i["cursor_from"], i["rows"]) for i in items] == [
            ("products", cursor, 0),
            ("products", None, 4),
        ]
        assert items[0]["cursor_to"] == cursor


class TestOverlappingUploads:
    async def test_a_cursor_never_skips_an_upload_that_commits_later(
        self, api: httpx.AsyncClient
    ) -> None:
        """Upload A starts first (the lower id) and commits last; a read between B's
        commit and A's gives a cursor that must still lead to A's rows."""
        await load(api, "products", PRODUCTS)
        release = asyncio.Event()
        boundary = "ov3rlap"

        async def slow_body() -> AsyncIterator[bytes]:
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file";'
                ' filename="a.csv"\r\nContent-Type: text/csv\r\n\r\n'
                "id,product_id,quantity,created_date\n100,1,1,2024-03-01\n"
            ).encode()
            await release.wait()
            yield f"101,2,1,2024-03-02\r\n--{boundary}--\r\n".encode()

        first = asyncio.create_task(post_multipart(api, "orders", slow_body(), boundary))
        for _ in range(100):  # until A's row exists: it holds the lower id
            running = (await api.get("/uploads", params={"kind": "orders"})).json()["items"]
            if running:
                break
            await asyncio.sleep(0.05)
        [a] = running
        b = await load(api, "orders", "id,product_id,quantity,created_date\n200,1,3,2024-03-03\n")
        assert b["upload_id"] > a["upload_id"]
        seen, cursor = await read(api, "orders")
        assert sorted(seen.column("order_id").to_pylist()) == [200]
        _, ofi_cursor = await read(api, "order_full_information")
        release.set()
        response = await first
        assert response.status_code == 201, response.text
        later, _ = await read(api, "orders", cursor)
        assert sorted(later.column("order_id").to_pylist()) == [100, 101]
        ofi, _ = await read(api, "order_full_information", ofi_cursor)
        assert sorted(ofi.column("order_id").to_pylist()) == [100, 101]


# Price history (issue 27): a products file may date its prices (`effective_from`).
DATED = "id,name,category,price,effective_from\n"
SHIRT_AND_HAT = DATED + "1,Shirt,Shirts,10.00,2024-01-01\n2,Hat,Hats,5.00,2024-01-01\n"
RAISE = DATED + "1,Shirt,Shirts,12.00,2024-06-01\n"


def history(table: pa.Table) -> list[tuple[int, Decimal, date, date | None]]:
    return sorted(
        (r["product_id"], r["price"], r["valid_from"], r["valid_to"]) for r in table.to_pylist()
    )


def priced(table: pa.Table) -> dict[int, tuple[Decimal, Decimal]]:
    """order_id: (unit_price, total_price)."""
    return {r["order_id"]: (r["unit_price"], r["total_price"]) for r in table.to_pylist()}


class TestProductPricesFeed:
    async def test_the_history_with_an_open_latest_price(self, api: httpx.AsyncClient) -> None:
        first = await load(api, "products", SHIRT_AND_HAT)
        second = await load(api, "products", RAISE, on_conflict="update")
        table, _ = await read(api, "product_prices")
        assert table.schema.names == [
            "product_id",
            "price",
            "valid_from",
            "valid_to",
            "upload_id",
            "changed_at",
            "product_code",
        ]
        assert table.schema.field("price").type == pa.decimal128(12, 2)
        assert table.schema.field("valid_to").type == pa.date32()
        assert history(table) == [
            (1, Decimal("10.00"), date(2024, 1, 1), date(2024, 6, 1)),
            (1, Decimal("12.00"), date(2024, 6, 1), None),
            (2, Decimal("5.00"), date(2024, 1, 1), None),
        ]
        setters = {(r["product_id"], r["valid_from"]): r["upload_id"] for r in table.to_pylist()}
        assert setters == {
            (1, date(2024, 1, 1)): first["upload_id"],
            (1, date(2024, 6, 1)): second["upload_id"],
            (2, date(2024, 1, 1)): first["upload_id"],
        }
        # When the product's prices last changed: the second upload's commit, for both of
        # product 1's rows (its first one's valid_to moved then).
        when = {(r["product_id"], r["valid_from"]): r["changed_at"] for r in table.to_pylist()}
        assert when[(1, date(2024, 1, 1))] == when[(1, date(2024, 6, 1))]
        assert when[(1, date(2024, 1, 1))] > when[(2, date(2024, 1, 1))]

    async def test_the_cursor_brings_re_ranged_rows_too(self, api: httpx.AsyncClient) -> None:
        """A new price ends the one before it (its `valid_to` moves) without that row's
        upload changing: an incremental read still has it, or a warehouse merging on
        (product_id, valid_from) would keep two open prices."""
        await load(api, "products", SHIRT_AND_HAT)
        _, cursor = await read(api, "product_prices")
        await load(api, "products", RAISE, on_conflict="update")
        changed, cursor = await read(api, "product_prices", cursor)
        assert history(changed) == [
            (1, Decimal("10.00"), date(2024, 1, 1), date(2024, 6, 1)),
            (1, Decimal("12.00"), date(2024, 6, 1), None),
        ]
        # The same file again changes nothing: nothing to read.
        report = await load(api, "products", RAISE, on_conflict="update")
        assert report["rows_unchanged"] == 1
        assert (await read(api, "product_prices", cursor))[0].num_rows == 0
        # A price before the first: it becomes the first, and ends at the old first's date.
        earlier = DATED + "1,Shirt,Shirts,9.00,2023-06-01\n"
        await load(api, "products", earlier, on_conflict="update")
        changed, _ = await read(api, "product_prices", cursor)
        assert history(changed) == [
            (1, Decimal("9.00"), date(2023, 6, 1), date(2024, 1, 1)),
            (1, Decimal("10.00"), date(2024, 1, 1), date(2024, 6, 1)),
            (1, Decimal("12.00"), date(2024, 6, 1), None),
        ]

    async def test_an_orders_upload_moves_no_price(self, api: httpx.AsyncClient) -> None:
        await load(api, "products", SHIRT_AND_HAT)
        _, cursor = await read(api, "product_prices")
        await load(api, "orders", "id,product_id,quantity,created_date\n1,1,1,2024-02-01\n")
        assert (await read(api, "product_prices", cursor))[0].num_rows == 0


class TestPriceAtSale:
    ORDERS = (
        "id,product_id,quantity,created_date\n"
        "1,1,2,2023-12-01\n2,1,2,2024-03-01\n3,1,2,2024-07-01\n4,2,1,2024-07-01\n"
        "5,1,1,2024-05-01\n"
    )

    async def test_each_order_at_the_price_in_effect_on_its_date(
        self, api: httpx.AsyncClient
    ) -> None:
        await load(api, "products", SHIRT_AND_HAT)
        await load(api, "orders", self.ORDERS)
        before, _ = await read(api, "order_full_information")
        assert {o: p for o, (p, _) in priced(before).items()} == {
            1: Decimal("10.00"),  # before the first price's date: the first price
            2: Decimal("10.00"),
            3: Decimal("10.00"),
            4: Decimal("5.00"),
            5: Decimal("10.00"),
        }
        _, orders_cursor = await read(api, "orders")
        await load(api, "products", RAISE, on_conflict="update")
        after, _ = await read(api, "order_full_information")
        assert priced(after) == {
            1: (Decimal("10.00"), Decimal("20.00")),
            2: (Decimal("10.00"), Decimal("20.00")),
            3: (Decimal("12.00"), Decimal("24.00")),  # sold after the change
            4: (Decimal("5.00"), Decimal("5.00")),
            5: (Decimal("10.00"), Decimal("10.00")),
        }
        # No order was written.
        assert (await read(api, "orders", orders_cursor))[0].num_rows == 0
        # The CSV export (the price joined in SQL) has the same totals.
        response = await api.get("/exports/order_full_information.csv")
        _header, *lines = csv.reader(io.StringIO(response.text))
        assert {int(line[1]): Decimal(line[4]) for line in lines} == {
            o: t for o, (_, t) in priced(after).items()
        }

    async def test_a_changed_past_price_moves_only_the_orders_of_its_days(
        self, api: httpx.AsyncClient
    ) -> None:
        await load(api, "products", SHIRT_AND_HAT)
        await load(api, "products", RAISE, on_conflict="update")
        await load(api, "orders", self.ORDERS)
        await load(
            api,
            "orders",
            "id,product_id,quantity,created_date,unit_price\n6,1,1,2024-05-01,9.50\n",
        )
        _, cursor = await read(api, "order_full_information")
        # A price between two others: the latest (the product's own price) stays.
        report = await load(
            api, "products", DATED + "1,Shirt,Shirts,11.00,2024-04-01\n", on_conflict="update"
        )
        assert report["rows_updated"] == 1
        changed, _ = await read(api, "order_full_information", cursor)
        # Order 5 (2024-05-01) now costs 11.00; 6 was charged its own price, and the
        # others' days keep theirs.
        assert priced(changed) == {5: (Decimal("11.00"), Decimal("11.00"))}

    async def test_an_order_charged_its_own_unit_price(self, api: httpx.AsyncClient) -> None:
        await load(api, "products", SHIRT_AND_HAT)
        await load(api, "products", RAISE, on_conflict="update")
        await load(
            api,
            "orders",
            "id,product_id,quantity,created_date,unit_price\n"
            "7,1,3,2024-07-01,9.50\n8,1,1,2024-07-01,\n9,2,2,2023-01-01,0.00\n",
        )
        ofi, _ = await read(api, "order_full_information")
        assert priced(ofi) == {
            7: (Decimal("9.50"), Decimal("28.50")),
            8: (Decimal("12.00"), Decimal("12.00")),  # none given: the list price
            9: (Decimal("0.00"), Decimal("0.00")),
        }
        orders, _ = await read(api, "orders")
        assert orders.schema.field("unit_price").type == pa.decimal128(12, 2)
        assert {r["order_id"]: r["unit_price"] for r in orders.to_pylist()} == {
            7: Decimal("9.50"),
            8: None,
            9: Decimal("0.00"),
        }


# Text ids (issue 27, item 4): codes beside the integer keys.
TEXT = {"ids": "text"}
CODED_PRODUCTS = "id,name,category,price\n85123A,Heart,Decor,2.55\n71053,Lantern,Decor,3.39\nNULL,NA,Decor,1.00\n"
CODED_ORDERS = (
    "id,product_id,quantity,created_date\nL-1,85123A,2,2024-12-01\n2,71053,1,2024-12-01\n"
)


def parquet_bytes(table: pa.Table) -> bytes:
    out = pa.BufferOutputStream()
    pq.write_table(table, out)
    data: bytes = out.getvalue().to_pybytes()
    return data


def codes(table: pa.Table, *names: str) -> set[tuple[Any, ...]]:
    return {tuple(r[n] for n in names) for r in table.to_pylist()}


class TestTextIds:
    async def test_integer_id_feeds_keep_their_columns_and_gain_null_codes(
        self, api: httpx.AsyncClient
    ) -> None:
        await load(api, "products", PRODUCTS)
        await load(api, "orders", ORDERS)
        old = {
            "orders": [
                ("order_id", pa.int64()),
                ("product_id", pa.int64()),
                ("quantity", pa.int32()),
                ("order_created_date", pa.date32()),
                ("unit_price", pa.decimal128(12, 2)),
                ("upload_id", pa.int64()),
                ("changed_at", pa.timestamp("us", tz="UTC")),
            ],
            "products": [
                ("product_id", pa.int64()),
                ("name", pa.string()),
                ("category", pa.string()),
                ("price", pa.decimal128(12, 2)),
                ("upload_id", pa.int64()),
                ("changed_at", pa.timestamp("us", tz="UTC")),
            ],
            "order_full_information": [
                ("order_created_date", pa.date32()),
                ("order_id", pa.int64()),
                ("product_id", pa.int64()),
                ("product_name", pa.string()),
                ("category", pa.string()),
                ("quantity", pa.int32()),
                ("unit_price", pa.decimal128(12, 2)),
                ("total_price", pa.decimal128(22, 2)),
            ],
        }
        added = {
            "orders": ["order_code", "product_code"],
            "products": ["product_code"],
            "order_full_information": ["order_code", "product_code"],
        }
        for feed, columns in old.items():
            table, _ = await read(api, feed)
            assert [(f.name, f.type) for f in table.schema] == [
                *columns,
                *((name, pa.string()) for name in added[feed]),
            ], feed
            for name in added[feed]:
                assert table.column(name).null_count == table.num_rows > 0, (feed, name)

    async def test_coded_rows_carry_their_codes_integer_ids_none(
        self, api: httpx.AsyncClient
    ) -> None:
        await load(api, "products", CODED_PRODUCTS, params=TEXT)
        await load(api, "orders", CODED_ORDERS, params=TEXT)
        products, _ = await read(api, "products")
        assert products.schema.field("product_id").type == pa.int64()
        by_code = {r["product_code"]: r for r in products.to_pylist()}
        assert set(by_code) == {"85123A", "NULL", None}
        heart, lantern = by_code["85123A"], by_code[None]
        assert heart["product_id"] < 0 and heart["name"] == "Heart"
        assert lantern["product_id"] == 71053
        # COPY's NULL is an empty field alone: a code NULL, a name NA, are text.
        assert by_code["NULL"]["name"] == "NA"
        prices, _ = await read(api, "product_prices")
        assert codes(prices, "product_id", "product_code", "price") == {
            (heart["product_id"], "85123A", Decimal("2.55")),
            (71053, None, Decimal("3.39")),
            (by_code["NULL"]["product_id"], "NULL", Decimal("1.00")),
        }
        orders, _ = await read(api, "orders")
        assert orders.schema.field("order_id").type == pa.int64()
        rows = {r["order_code"]: r for r in orders.to_pylist()}
        assert set(rows) == {"L-1", None}
        assert rows["L-1"]["order_id"] < 0 and rows[None]["order_id"] == 2
        assert codes(orders, "order_code", "product_id", "product_code") == {
            ("L-1", heart["product_id"], "85123A"),
            (None, 71053, None),
        }
        ofi, _ = await read(api, "order_full_information")
        assert codes(ofi, "order_code", "product_code", "product_name", "total_price") == {
            ("L-1", "85123A", "Heart", Decimal("5.10")),
            (None, None, "Lantern", Decimal("3.39")),
        }
        # The merged feed shows the order as the CSV export does: its code, else its key.
        response = await api.get("/exports/order_full_information.csv")
        _header, *lines = csv.reader(io.StringIO(response.text))
        assert sorted((line[1], Decimal(line[4])) for line in lines) == sorted(
            (r["order_code"] or str(r["order_id"]), r["total_price"]) for r in ofi.to_pylist()
        )

    async def test_incremental_reads_carry_the_codes_of_what_changed(
        self, api: httpx.AsyncClient
    ) -> None:
        await load(api, "products", CODED_PRODUCTS, params=TEXT)
        await load(api, "orders", CODED_ORDERS, params=TEXT)
        cursors = {f: (await read(api, f))[1] for f in ("orders", "order_full_information")}
        body = (
            "id,product_id,quantity,created_date\nL-9,85123A,3,2024-12-02\n9,71053,1,2024-12-02\n"
        )
        await load(api, "orders", body, params=TEXT)
        for feed in ("orders", "order_full_information"):
            changed, _ = await read(api, feed, cursors[feed])
            assert codes(changed, "order_code", "product_code", "quantity") == {
                ("L-9", "85123A", 3),
                (None, None, 1),
            }, feed
        # A coded product's new price: its row comes again, with its code.
        _, cursor = await read(api, "products")
        raised = "id,name,category,price\n85123A,Heart,Decor,2.75\n"
        await load(api, "products", raised, params=TEXT, on_conflict="update")
        changed, _ = await read(api, "products", cursor)
        assert codes(changed, "product_code", "price") == {("85123A", Decimal("2.75"))}

    async def test_the_real_shops_lines_come_with_their_codes(self, api: httpx.AsyncClient) -> None:
        """Its first 2,000 lines (StockCodes, line keys of invoice/stock code/n): the
        merged feed equals the CSV export row for row, ids as written."""
        import pyarrow.compute as pc

        real = pq.read_table(require_online_retail()).slice(0, 2000)
        stock = real.group_by("StockCode").aggregate([("Description", "max")])
        catalogue = pa.table(
            {
                "id": stock["StockCode"],
                "name": pc.fill_null(stock["Description_max"], "(no description)"),
                "category": pa.array(["Retail"] * stock.num_rows),
                "price": pa.array([Decimal("1.00")] * stock.num_rows, pa.decimal128(12, 2)),
            }
        )
        await load(api, "products", parquet_bytes(catalogue), filename="p.parquet", params=TEXT)
        mapping = (
            "order_id=InvoiceNo,product_id=StockCode,quantity=Quantity,created_date=InvoiceDate,"
            "unit_price=UnitPrice"
        )
        report = await load(
            api,
            "orders",
            parquet_bytes(real),
            filename="o.parquet",
            params={**TEXT, "columns": mapping},
        )
        assert report["rows_inserted"] > 1900
        ofi, _ = await read(api, "order_full_information")
        assert ofi.num_rows == report["rows_inserted"]
        assert ofi.column("order_code").null_count == 0
        response = await api.get("/exports/order_full_information.csv")
        _header, *lines = csv.reader(io.StringIO(response.text))
        assert sorted((line[1], line[2], Decimal(line[4])) for line in lines) == sorted(
            (r["order_code"], r["product_name"], r["total_price"]) for r in ofi.to_pylist()
        )
        orders, _ = await read(api, "orders")
        sold = {r["StockCode"] for r in real.to_pylist() if r["Quantity"] > 0}
        # A StockCode that is a whole number (21000) is its own key, without a code.
        assert {r["product_code"] or str(r["product_id"]) for r in orders.to_pylist()} == sold
        assert {r["product_code"] is None for r in orders.to_pylist()} == {True, False}
        assert pc.all(pc.less(orders.column("order_id"), 0)).as_py()
