"""Text ids (issue 27, item 4): with `?ids=text`, product and order ids may be SKU codes,
hex digests or UUIDs, kept and shown as the file wrote them; integer ids stay integers
(and their JSON numbers); lines without an id of their own are keyed by the service."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import httpx

from tests.conftest import Db, require_online_retail
from tests.helpers import assert_error, counts, upload

TEXT = {"ids": "text"}
UUID = "3f2b8c1e-9d4a-4e6b-8f0a-1c2d3e4f5a6b"
PRODUCTS = (
    "id,name,category,price\n"
    "85123A,White hanging heart,Decor,2.55\n"
    "71053,White metal lantern,Decor,3.39\n"  # an integer: its own key
    "007,Bond,Spies,1.00\n"  # not canonical: a code, shown as written
    f"{UUID},Digest,Misc,5.00\n"
)


async def _products(client: httpx.AsyncClient) -> None:
    report = (await upload(client, "products", PRODUCTS, params=TEXT)).json()
    assert counts(report) == (4, 0, 0, 0), report


class TestTextIds:
    async def test_products_keep_their_codes_and_integers_stay_integers(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        await _products(client)
        stored = await db.rows("SELECT product_id > 0, code FROM products ORDER BY code")
        assert stored == [(False, "007"), (False, UUID), (False, "85123A"), (True, None)]
        assert await db.rows("SELECT product_id FROM products WHERE code IS NULL") == [(71053,)]
        again = (await upload(client, "products", PRODUCTS, params=TEXT)).json()
        assert counts(again) == (0, 0, 4, 0)
        listed = (await client.get("/products", params={"search": "85123A"})).json()
        assert [p["product_id"] for p in listed["items"]] == ["85123A"]
        listed = (await client.get("/products", params={"search": "71053"})).json()
        assert [p["product_id"] for p in listed["items"]] == [71053]
        assert (await client.get("/products/007")).json()["name"] == "Bond"
        assert (await client.get("/products/71053")).json()["product_id"] == 71053
        assert_error(await client.get("/products/7"), 404, "product_not_found")

    async def test_without_ids_text_a_code_is_not_an_integer(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        report = (await upload(client, "products", PRODUCTS)).json()
        assert counts(report) == (2, 0, 0, 2)  # 71053 and 007 (read as 7), as always
        assert report["rejects_by_code"] == {"invalid_integer": 2}

    async def test_orders_name_products_and_lines_by_code(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        await _products(client)
        content = (
            "id,product_id,quantity,created_date\n"
            "L-1,85123A,2,2024-12-01\n"
            "L-2,71053,1,2024-12-01\n"
            "3,007,1,2024-12-02\n"
            "L-1,007,9,2024-12-02\n"  # the same line id again
            "L-4,NOPE,1,2024-12-02\n"
            f"{'x' * 65},85123A,1,2024-12-02\n"
        )
        report = (await upload(client, "orders", content, params=TEXT)).json()
        assert counts(report) == (3, 0, 0, 3), report
        assert report["rejects_by_code"] == {
            "duplicate_in_file": 1,
            "unknown_product": 1,
            "too_long": 1,
        }
        rejects = (await client.get(f"/uploads/{report['upload_id']}/rejects")).json()["items"]
        messages = {r["_error_code"]: r["_error_message"] for r in rejects}
        assert messages["unknown_product"] == "product_id NOPE is not a stored product"
        assert messages["duplicate_in_file"] == "id L-1 already appears on line 2"
        page = (await client.get("/orders")).json()["items"]
        assert [(o["order_id"], o["product_id"], o["total_price_brl"]) for o in page] == [
            ("L-1", "85123A", "5.10"),
            ("L-2", 71053, "3.39"),
            (3, "007", "1.00"),
        ]
        exported = (await client.get("/orders", params={"format": "csv"})).text
        rows = list(csv.DictReader(io.StringIO(exported)))
        assert [(r["order_id"], r["product_id"]) for r in rows] == [
            ("L-1", "85123A"),
            ("L-2", "71053"),
            ("3", "007"),
        ]
        full = (await client.get("/exports/order_full_information.csv")).text
        assert [r["order_id"] for r in csv.DictReader(io.StringIO(full))] == ["L-1", "L-2", "3"]
        kpis = (await client.get("/kpis")).json()
        assert kpis["most_demanded_product"]["product_id"] == "85123A"
        again = (await upload(client, "orders", content, params=TEXT)).json()
        assert counts(again) == (0, 0, 3, 3)
        await db.assert_rollups_exact()

    async def test_lines_without_an_id_are_keyed_by_their_order(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        await _products(client)
        header = "order_id,product_id,quantity,created_date\n"
        first = header + "536365,85123A,6,2024-12-01\n536365,85123A,2,2024-12-01\n"
        first += "536365,71053,6,2024-12-01\n,71053,1,2024-12-01\n"
        report = (await upload(client, "orders", first, params=TEXT)).json()
        assert counts(report) == (3, 0, 0, 1), report
        assert report["rejects_by_code"] == {"missing_value": 1}
        codes = await db.rows("SELECT code, quantity FROM orders ORDER BY code")
        assert codes == [
            ("536365/71053/1", 6),
            ("536365/85123A/1", 6),
            ("536365/85123A/2", 2),
        ]
        # The same file again changes nothing; a later line of the order is a new line.
        again = (await upload(client, "orders", first, params=TEXT)).json()
        assert counts(again) == (0, 0, 3, 1)
        later = header + "536365,007,1,2024-12-01\n"
        assert counts((await upload(client, "orders", later, params=TEXT)).json()) == (
            1,
            0,
            0,
            0,
        )
        assert await db.rows("SELECT orders FROM daily_sales") == [(1,)]
        await db.assert_rollups_exact()

    async def test_a_file_with_neither_id_nor_order_id_is_refused(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        response = await upload(
            client, "orders", "product_id,quantity,created_date\n1,1,2024-12-01\n", params=TEXT
        )
        assert_error(response, 422, "missing_columns")


async def test_the_real_shops_export_loads_as_it_is(client: httpx.AsyncClient, db: Db) -> None:
    """The real shop's first 2,000 lines, sales and returns, with its own stock codes,
    invoices, timestamps and prices: a products file made from its codes and
    descriptions, then its lines mapped by `?columns=`, no id or date rewritten."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    real = pq.read_table(require_online_retail()).slice(0, 2000)
    codes = real.group_by("StockCode").aggregate([("Description", "max"), ("UnitPrice", "max")])
    catalogue = pa.table(
        {
            "id": codes["StockCode"],
            "name": pc.fill_null(codes["Description_max"], "(no description)"),
            "category": pa.array(["Retail"] * codes.num_rows),
            "price": codes["UnitPrice_max"],
        }
    )
    out = pa.BufferOutputStream()
    pq.write_table(catalogue, out)
    products = await upload(
        client, "products", out.getvalue().to_pybytes(), filename="products.parquet",
        params={**TEXT, "effective_from": "2010-12-01"},
    )  # fmt: skip
    assert products.status_code == 201, products.text
    assert products.json()["rows_rejected"] == 0, products.json()

    out = pa.BufferOutputStream()
    pq.write_table(real, out)
    mapping = (
        "order_id=InvoiceNo,product_id=StockCode,quantity=Quantity,created_date=InvoiceDate,"
        "unit_price=UnitPrice"
    )
    response = await upload(
        client, "orders", out.getvalue().to_pybytes(), filename="online_retail.parquet",
        params={**TEXT, "columns": mapping},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    report = response.json()
    rows = real.to_pylist()
    sold = [r for r in rows if r["Quantity"] > 0]
    # Returns (negative quantities) are refused with their reason; every sale loads
    # (a line repeated within its invoice is a line of its own: /1, /2 …).
    assert report["rows_rejected"] == len(rows) - len(sold)
    assert set(report["rejects_by_code"]) == {"out_of_range"}
    assert report["rows_inserted"] == len(sold)
    charged = sum(Decimal(str(r["UnitPrice"])) * r["Quantity"] for r in sold)
    [(revenue, orders)] = await db.rows("SELECT sum(revenue_brl), sum(orders) FROM daily_sales")
    assert revenue == charged
    assert orders == len({(r["InvoiceNo"], r["InvoiceDate"].date()) for r in sold})
    page = (await client.get("/orders", params={"limit": 1})).json()["items"]
    first = sold[0]
    assert page[0]["product_id"] == first["StockCode"]
    assert page[0]["order_id"] == f"{first['InvoiceNo']}/{first['StockCode']}/1"
    await db.assert_rollups_exact()
