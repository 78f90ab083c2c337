"""The order feeds' Arrow-side join (exports/merge.py), without a server."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from app.exports import feeds, merge

OFI = feeds.FeedName.ORDER_FULL_INFORMATION


def products(rows: list[tuple[int, str, str, str]]) -> pa.Table:
    ids, names, categories, prices = zip(*rows, strict=True) if rows else ((), (), (), ())
    return pa.Table.from_arrays(
        [
            pa.array(ids, pa.int64()),
            pa.array(names, pa.string()),
            pa.array(categories, pa.string()),
            pa.array([Decimal(p) for p in prices], pa.decimal128(12, 2)),
        ],
        schema=feeds.arrow_schema(feeds.ORDER_PRODUCTS),
    )


def ofi_rows(rows: list[tuple[int, int, int]]) -> pa.RecordBatch:
    """(order_id, product_id, quantity), all on 2024-01-01."""
    return pa.RecordBatch.from_arrays(
        [
            pa.array([date(2024, 1, 1)] * len(rows), pa.date32()),
            pa.array([r[0] for r in rows], pa.int64()),
            pa.array([r[1] for r in rows], pa.int64()),
            pa.array([r[2] for r in rows], pa.int32()),
        ],
        schema=feeds.arrow_schema(feeds.OFI_ROWS),
    )


class TestOrderFullInformation:
    def test_product_columns_and_exact_totals(self) -> None:
        catalogue = products(
            [(7, "Desk", "Office", "200.00"), (2, "Lamp", "Home", "10.50"), (9, "Pin", "X", "0.01")]
        )
        finish = merge.finisher(OFI, {"products": catalogue})
        out = finish(ofi_rows([(1, 2, 3), (2, 7, 1), (3, 9, 7), (4, 2, 1)]))
        assert out.schema == feeds.schema(OFI)
        assert [
            (r["order_id"], r["product_name"], r["category"], r["unit_price"], r["total_price"])
            for r in out.to_pylist()
        ] == [
            (1, "Lamp", "Home", Decimal("10.50"), Decimal("31.50")),
            (2, "Desk", "Office", Decimal("200.00"), Decimal("200.00")),
            (3, "Pin", "X", Decimal("0.01"), Decimal("0.07")),
            (4, "Lamp", "Home", Decimal("10.50"), Decimal("10.50")),
        ]

    def test_the_largest_total_is_exact(self) -> None:
        """The highest price numeric(12,2) holds times the highest int32 quantity."""
        finish = merge.finisher(OFI, {"products": products([(1, "a", "b", "9999999999.99")])})
        [row] = finish(ofi_rows([(1, 1, 2**31 - 1)])).to_pylist()
        assert row["total_price"] == Decimal("9999999999.99") * (2**31 - 1)

    @pytest.mark.parametrize("product_id", [1, 2**31 - 1])  # a direct table, a search
    def test_small_and_large_ids_are_found(self, product_id: int) -> None:
        catalogue = products([(product_id, "a", "b", "1.00"), (5, "c", "d", "2.00")])
        finish = merge.finisher(OFI, {"products": catalogue})
        out = finish(ofi_rows([(1, product_id, 1), (2, 5, 1)])).to_pylist()
        assert [r["product_name"] for r in out] == ["a", "c"]

    @pytest.mark.parametrize(
        "catalogue", [[], [(1, "a", "b", "1.00")], [(2**31 - 1, "a", "b", "1")]]
    )
    def test_a_missing_product_fails_the_read(
        self, catalogue: list[tuple[int, str, str, str]]
    ) -> None:
        finish = merge.finisher(OFI, {"products": products(catalogue)})
        with pytest.raises(merge.MissingProduct):
            finish(ofi_rows([(1, 3, 1)]))


class TestOrders:
    def test_changed_at_is_the_uploads_and_null_without_one(self) -> None:
        when = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
        uploads = pa.Table.from_arrays(
            [pa.array([4, 9], pa.int64()), pa.array([when, None], pa.timestamp("us", tz="UTC"))],
            schema=feeds.arrow_schema(feeds.UPLOAD_TIMES),
        )
        rows = pa.RecordBatch.from_arrays(
            [
                pa.array([1, 2, 3, 4]),
                pa.array([1, 1, 1, 1]),
                pa.array([1, 1, 1, 1], pa.int32()),
                pa.array([date(2024, 1, 1)] * 4, pa.date32()),
                pa.array([4, None, 9, 5], pa.int64()),  # tracked, older, running, deleted
            ],
            schema=feeds.arrow_schema(feeds.ORDER_ROWS),
        )
        out = merge.finisher(feeds.FeedName.ORDERS, {"uploads": uploads})(rows)
        assert out.schema == feeds.schema(feeds.FeedName.ORDERS)
        assert out.column("changed_at").to_pylist() == [when, None, None, None]
        assert out.column("upload_id").to_pylist() == [4, None, 9, 5]
