"""Issue 27, item 5: an upload says when it went wrong: its rejected share, a warning
when half or more of it was rejected, and `max_rejected_share` to fail it whole."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import PRODUCTS, Db
from tests.helpers import assert_error, upload

HEADER = "id,product_id,quantity,created_date\n"


def _orders(good: int, bad_dates: int, unknown: int = 0) -> str:
    rows = [f"{i},1,1,2024-11-06" for i in range(1, good + 1)]
    rows += [f"{100 + i},1,1,06/11/2024" for i in range(bad_dates)]
    rows += [f"{200 + i},999,1,2024-11-06" for i in range(unknown)]
    return HEADER + "\n".join(rows) + "\n"


class TestRejectedShare:
    async def test_every_report_carries_its_share_and_a_clean_one_no_warning(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        await upload(client, "products", PRODUCTS)
        report = (await upload(client, "orders", _orders(3, 1))).json()
        assert report["rejected_share"] == 0.25
        assert report["warnings"] == []
        clean = (await upload(client, "products", PRODUCTS)).json()
        assert (clean["rejected_share"], clean["warnings"]) == (0.0, [])
        listed = (await client.get("/uploads")).json()["items"]
        assert {u["upload_id"]: u["rejected_share"] for u in listed}[report["upload_id"]] == 0.25

    async def test_every_row_rejected_is_still_201_but_says_so_and_why(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        await upload(client, "products", PRODUCTS)
        response = await upload(client, "orders", _orders(0, 4, unknown=1))
        assert response.status_code == 201  # as before: max_rejected_share defaults to 1
        report = response.json()
        assert report["rejected_share"] == 1.0
        [warning] = report["warnings"]
        assert warning.startswith("Every row was rejected (5), most as invalid_date (4)")
        assert "?date_format=" in warning

    async def test_half_rejected_warns_with_the_share(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        await upload(client, "products", PRODUCTS)
        report = (await upload(client, "orders", _orders(2, 0, unknown=2))).json()
        [warning] = report["warnings"]
        assert warning.startswith("50% of the rows were rejected (2 of 4), most as unknown_product")
        assert "upload the products file first" in warning
        below = (await upload(client, "orders", _orders(3, 0, unknown=2))).json()
        assert below["warnings"] == []  # 40%: no warning

    @pytest.mark.parametrize("fast", [True, False], ids=["fast", "careful"])
    async def test_past_max_rejected_share_nothing_is_loaded(
        self, client: httpx.AsyncClient, db: Db, fast: bool
    ) -> None:
        await upload(client, "products", PRODUCTS)
        content = _orders(2, 2, unknown=1)
        if not fast:  # a ragged row sends the file down the careful path
            content += "300,1,1,2024-11-06,extra\n"
        response = await upload(client, "orders", content, params={"max_rejected_share": "0.5"})
        error = assert_error(response, 422, "too_many_rejects")
        details = error["details"]
        assert details["rows_total"] == (5 if fast else 6)
        assert details["max_rejected_share"] == 0.5
        assert details["top_codes"][0] == {"code": "invalid_date", "rows": 2}
        assert await db.count("orders") == 0  # nothing half-loaded
        await db.assert_rollups_exact()
        failed = (await client.get(f"/uploads/{details['upload_id']}")).json()
        assert failed["status"] == "failed"
        assert failed["error"]["code"] == "too_many_rejects"
        assert failed["error"]["details"]["top_codes"] == details["top_codes"]
        # At the bound it loads: 3 of 6 rejected is 0.5, not past it.
        at = await upload(
            client, "orders", _orders(3, 2, unknown=1), params={"max_rejected_share": "0.5"}
        )
        assert at.status_code == 201, at.text
        assert await db.count("orders") == 3

    @pytest.mark.parametrize("value", ["-0.1", "1.5", "nan", "inf", "half"])
    async def test_a_share_outside_0_to_1_is_refused(
        self, client: httpx.AsyncClient, value: str
    ) -> None:
        response = await upload(client, "products", PRODUCTS, params={"max_rejected_share": value})
        assert_error(response, 422, "validation_error")
