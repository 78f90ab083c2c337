"""GET /uploads, /uploads/{id} and /uploads/{id}/rejects."""

from __future__ import annotations

import asyncio
import csv
import io

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import API_KEY, PRODUCTS, Db
from tests.helpers import assert_error, multipart_body, post_multipart, upload


class TestReport:
    async def test_report_has_every_spec_field(self, client: httpx.AsyncClient) -> None:
        response = await upload(client, "products", PRODUCTS, filename="p.csv")
        assert response.status_code == 201
        report = response.json()
        for key in (
            "upload_id", "kind", "filename", "sha256", "status", "rows_total", "rows_inserted",
            "rows_updated", "rows_unchanged", "rows_rejected", "rejects_by_code", "warnings",
            "rejects_url", "started_at", "finished_at",
        ):  # fmt: skip
            assert key in report, key
        import hashlib

        assert report["sha256"] == hashlib.sha256(PRODUCTS.encode()).hexdigest()
        assert report["filename"] == "p.csv"
        assert report["kind"] == "products"
        assert report["bytes_received"] == len(PRODUCTS)
        assert report["rejects_url"] == f"/uploads/{report['upload_id']}/rejects"
        assert (await client.get(f"/uploads/{report['upload_id']}")).json() == report

    async def test_history_newest_first_with_pagination(self, client: httpx.AsyncClient) -> None:
        ids = [(await upload(client, "products", PRODUCTS)).json()["upload_id"] for _ in range(5)]
        page = (await client.get("/uploads", params={"limit": 2})).json()
        assert [i["upload_id"] for i in page["items"]] == ids[::-1][:2]
        seen = [i["upload_id"] for i in page["items"]]
        while page["next_cursor"]:
            page = (
                await client.get("/uploads", params={"limit": 2, "cursor": page["next_cursor"]})
            ).json()
            seen += [i["upload_id"] for i in page["items"]]
        assert seen == ids[::-1]
        only_orders = (await client.get("/uploads", params={"kind": "orders"})).json()
        assert only_orders["items"] == []

    async def test_unknown_upload_is_404(self, client: httpx.AsyncClient) -> None:
        assert_error(await client.get("/uploads/999"), 404, "upload_not_found")
        assert_error(await client.get("/uploads/999/rejects"), 404, "upload_not_found")
        assert_error(await client.get("/uploads/0"), 422, "validation_error")
        assert_error(await client.get("/uploads/abc"), 422, "validation_error")

    async def test_forged_cursor_is_422(self, client: httpx.AsyncClient) -> None:
        for cursor in (
            "garbage",
            "WzEuNV0",
            "W3RydWVd",
            "WzEsMl0",
            "eyJ4IjoxfQ",
            "WyJhIl0",
            "Wzk5OTk5OTk5OTk5OTk5OTk5OTk5XQ",
            "%%%",
        ):
            assert_error(
                await client.get("/uploads", params={"cursor": cursor}), 422, "invalid_cursor"
            )

    async def test_dead_running_upload_reads_as_failed(
        self, client: httpx.AsyncClient, engine: AsyncEngine, db: Db
    ) -> None:
        # A process that died mid-upload leaves its row running, with no session holding it.
        async with engine.begin() as conn:
            upload_id = await conn.scalar(
                text(
                    "INSERT INTO uploads (kind, filename) VALUES ('orders', 'x.csv') RETURNING upload_id"
                )
            )
        report = (await client.get(f"/uploads/{upload_id}")).json()
        assert report["status"] == "failed"
        assert report["error"]["code"] == "interrupted"
        assert report["finished_at"] is not None


class TestRejects:
    async def bad_upload(self, client: httpx.AsyncClient) -> dict[str, object]:
        rows = "".join(f'{i},=HYPERLINK("x"),c,-{i}\n' for i in range(1, 8))
        response = await upload(
            client, "products", "id,name,category,price\n" + rows + "8,ok,c,1\n"
        )
        return response.json()  # type: ignore[no-any-return]

    async def test_json_pages(self, client: httpx.AsyncClient) -> None:
        report = await self.bad_upload(client)
        assert report["rows_rejected"] == 7
        url = str(report["rejects_url"])
        page = (await client.get(url, params={"limit": 3})).json()
        assert page["columns"] == ["id", "name", "category", "price"]
        rows = [i["_row_number"] for i in page["items"]]
        while page["next_cursor"]:
            page = (
                await client.get(url, params={"limit": 3, "cursor": page["next_cursor"]})
            ).json()
            rows += [i["_row_number"] for i in page["items"]]
        assert rows == [2, 3, 4, 5, 6, 7, 8]
        first = (await client.get(url)).json()["items"][0]
        assert first == {
            "id": "1",
            "name": '=HYPERLINK("x")',
            "category": "c",
            "price": "-1",
            "_row_number": 2,
            "_error_code": "out_of_range",
            "_error_message": "price '-1' is outside 0 to 9999999999.99",
        }

    async def test_csv_is_escaped_against_formulas(self, client: httpx.AsyncClient) -> None:
        report = await self.bad_upload(client)
        response = await client.get(str(report["rejects_url"]), params={"format": "csv"})
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        assert response.headers["content-disposition"].startswith("attachment;")
        rows = list(csv.reader(io.StringIO(response.text)))
        assert rows[0] == [
            "id",
            "name",
            "category",
            "price",
            "_row_number",
            "_error_code",
            "_error_message",
        ]
        assert rows[1] == [
            "1",
            '\'=HYPERLINK("x")',
            "c",
            "'-1",
            "2",
            "out_of_range",
            "price '-1' is outside 0 to 9999999999.99",
        ]
        assert len(rows) == 8

    async def test_accept_header_and_406(self, client: httpx.AsyncClient) -> None:
        report = await self.bad_upload(client)
        url = str(report["rejects_url"])
        assert (
            (await client.get(url, headers={"Accept": "text/csv"}))
            .headers["content-type"]
            .startswith("text/csv")
        )
        assert (await client.get(url, headers={"Accept": "application/json"})).json()["items"]
        assert_error(
            await client.get(url, headers={"Accept": "application/xml"}), 406, "not_acceptable"
        )
        assert_error(await client.get(url, params={"format": "xml"}), 422, "validation_error")

    async def test_no_rejects(self, client: httpx.AsyncClient) -> None:
        report = (await upload(client, "products", PRODUCTS)).json()
        assert (await client.get(report["rejects_url"])).json()["items"] == []
        csv_text = (await client.get(report["rejects_url"], params={"format": "csv"})).text
        assert csv_text == "id,name,category,price,_row_number,_error_code,_error_message\n"


def order_pieces(pieces: int, *, quoted: bool = False, product: str = "1") -> list[str]:
    """An orders file in pieces: the header, then `pieces` × 1,000 rows of product 1
    (`quoted`: the product id quoted, as exporters write; `product`: as written)."""
    product = f'"{product}"' if quoted else product
    return ["id,product_id,quantity,created_date\n"] + [
        "".join(f"{i},{product},1,2024-12-01\n" for i in range(start, start + 1000))
        for start in range(1, pieces * 1000, 1000)
    ]


class TestProgress:
    @pytest.mark.parametrize(
        ("quoted", "product"),
        [(False, "1"), (True, "1"), (False, "01")],
        # A leading zero sends an orders file down the careful path, which parses the
        # spool as it grows: its rows are counted while the file still arrives too.
        ids=["fast-path", "fast-path-quoted", "careful-path"],
    )
    async def test_running_upload_shows_bytes_and_rows_read(
        self, client: httpx.AsyncClient, db: Db, quoted: bool, product: str
    ) -> None:
        await upload(client, "products", PRODUCTS)
        pieces = order_pieces(3, quoted=quoted, product=product)
        body = multipart_body("pr0gress", pieces, delay=1.1)
        task = asyncio.create_task(post_multipart(client, "orders", body, "pr0gress"))
        await asyncio.sleep(2.2)
        running = (await client.get("/uploads", params={"kind": "orders"})).json()["items"][0]
        assert running["status"] == "running"
        assert running["bytes_received"] > 0
        assert running["rows_total"] > 0  # counted as they stream in, on either path
        assert running["bytes_received"] < sum(len(p) for p in pieces)
        assert running["finished_at"] is None
        assert await db.count("orders") == 0  # readers never see half an upload
        response = await task
        assert response.status_code == 201
        assert response.json()["rows_inserted"] == 3000


class TestKilledConnection:
    async def test_killed_connection_mid_upload_loads_nothing_and_recovers(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        await upload(client, "products", PRODUCTS)
        body = multipart_body("k1ll", order_pieces(5), delay=0.5)
        task = asyncio.create_task(post_multipart(client, "orders", body, "k1ll"))
        killed: list[tuple[object, ...]] = []
        for _ in range(40):
            await asyncio.sleep(0.1)
            killed = await db.rows(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND query LIKE 'COPY%' AND pid <> pg_backend_pid()"
            )
            if killed:
                break
        assert killed, "the upload's COPY was never seen"
        response = await task
        assert_error(response, 503, "database_unavailable")
        assert await db.count("orders") == 0
        assert await db.count("rejects") == 0
        latest = (await client.get("/uploads", params={"kind": "orders"})).json()["items"][0]
        assert latest["status"] == "failed"
        # The service goes on: the next upload works without a restart.
        again = await upload(
            client, "orders", "id,product_id,quantity,created_date\n1,1,1,2024-12-01\n"
        )
        assert again.status_code == 201
        assert (await client.get("/readyz")).status_code == 200


async def test_hostile_filename_is_kept_printable(client: httpx.AsyncClient) -> None:
    boundary = "fn"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a\x00b\x07.csv"\r\n'
        "Content-Type: text/csv\r\n\r\nid,name,category,price\n1,a,b,1\n"
        f"\r\n--{boundary}--\r\n"
    ).encode()
    response = await client.post(
        "/uploads/products",
        content=body,
        headers={"X-API-Key": API_KEY, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["filename"] == "ab.csv"
