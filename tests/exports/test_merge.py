"""The order feeds' Arrow-side join (exports/merge.py), without a server."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from app.exports import feeds, merge

OFI = feeds.FeedName.ORDER_FULL_INFORMATION
DAY = date(2024, 1, 1)


def products(rows: Sequence[tuple[int, str, str] | tuple[int, str, str, str | None]]) -> pa.Table:
    """(product_id, name, category[, code]): no code unless said."""
    full = [(*r, None)[:4] for r in rows]
    return pa.Table.from_arrays(
        [
            pa.array([r[0] for r in full], pa.int64()),
            pa.array([r[1] for r in full], pa.string()),
            pa.array([r[2] for r in full], pa.string()),
            pa.array([r[3] for r in full], pa.string()),
        ],
        schema=feeds.arrow_schema(feeds.ORDER_PRODUCTS),
    )


def prices(rows: list[tuple[int, date | None, str]]) -> pa.Table:
    """(product_id, applies_from (None: from the beginning), price)."""
    ids, starts, amounts = zip(*rows, strict=True) if rows else ((), (), ())
    return pa.Table.from_arrays(
        [
            pa.array(ids, pa.int64()),
            pa.array(starts, pa.date32()),
            pa.array([Decimal(p) for p in amounts], pa.decimal128(12, 2)),
        ],
        schema=feeds.arrow_schema(feeds.ORDER_PRICES),
    )


def catalogue(rows: list[tuple[int, str, str, str]]) -> dict[str, pa.Table]:
    """Products (id, name, category, price) with one price each, for every day."""
    return {
        "products": products([(i, n, c) for i, n, c, _ in rows]),
        "prices": prices([(i, None, p) for i, _, _, p in rows]),
    }


def ofi_rows(
    rows: Sequence[
        tuple[int, int, int]
        | tuple[int, int, int, date, str | None]
        | tuple[int, int, int, date, str | None, str | None]
    ],
) -> pa.RecordBatch:
    """(order_id, product_id, quantity[, created_date, charged unit price[, code]]): on
    DAY at the list price, without a code, unless said."""
    full = [(*r, *(DAY, None, None)[len(r) - 3 :]) for r in rows]
    return pa.RecordBatch.from_arrays(
        [
            pa.array([r[3] for r in full], pa.date32()),
            pa.array([r[0] for r in full], pa.int64()),
            pa.array([r[1] for r in full], pa.int64()),
            pa.array([r[2] for r in full], pa.int32()),
            pa.array([None if r[4] is None else Decimal(r[4]) for r in full], pa.decimal128(12, 2)),
            pa.array([r[5] for r in full], pa.string()),
        ],
        schema=feeds.arrow_schema(feeds.OFI_ROWS),
    )


class TestOrderFullInformation:
    def test_product_columns_and_exact_totals(self) -> None:
        finish = merge.finisher(
            OFI,
            catalogue(
                [
                    (7, "Desk", "Office", "200.00"),
                    (2, "Lamp", "Home", "10.50"),
                    (9, "Pin", "X", "0.01"),
                ]
            ),
        )
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

    def test_codes_beside_the_keys_and_null_for_integer_ids(self) -> None:
        low = -(2**31)
        named = products([(low, "Heart", "Decor", "85123A"), (71053, "Lantern", "Decor")])
        finish = merge.finisher(
            OFI, {"products": named, "prices": prices([(low, None, "2.55"), (71053, None, "3.39")])}
        )
        out = finish(
            ofi_rows([(-(2**63), low, 2, DAY, None, "L-1"), (2, 71053, 1), (3, low, 1)])
        ).to_pylist()
        assert [
            (r["order_id"], r["order_code"], r["product_id"], r["product_code"], r["total_price"])
            for r in out
        ] == [
            (-(2**63), "L-1", low, "85123A", Decimal("5.10")),
            (2, None, 71053, None, Decimal("3.39")),
            (3, None, low, "85123A", Decimal("2.55")),
        ]

    def test_the_largest_total_is_exact(self) -> None:
        """The highest price numeric(12,2) holds times the highest int32 quantity."""
        finish = merge.finisher(OFI, catalogue([(1, "a", "b", "9999999999.99")]))
        [row] = finish(ofi_rows([(1, 1, 2**31 - 1)])).to_pylist()
        assert row["total_price"] == Decimal("9999999999.99") * (2**31 - 1)

    @pytest.mark.parametrize("product_id", [1, 2**31 - 1])  # a direct table, a search
    def test_small_and_large_ids_are_found(self, product_id: int) -> None:
        finish = merge.finisher(
            OFI, catalogue([(product_id, "a", "b", "1.00"), (5, "c", "d", "2.00")])
        )
        out = finish(ofi_rows([(1, product_id, 1), (2, 5, 1)])).to_pylist()
        assert [(r["product_name"], r["unit_price"]) for r in out] == [
            ("a", Decimal("1.00")),
            ("c", Decimal("2.00")),
        ]

    @pytest.mark.parametrize("rows", [[], [(1, "a", "b", "1.00")], [(2**31 - 1, "a", "b", "1")]])
    def test_a_missing_product_fails_the_read(self, rows: list[tuple[int, str, str, str]]) -> None:
        finish = merge.finisher(OFI, catalogue(rows))
        with pytest.raises(merge.MissingProduct):
            finish(ofi_rows([(1, 3, 1)]))


class TestPriceAtSale:
    """An order is valued at the price it was charged, else at its product's price in
    effect on its date: the last one whose `applies_from` is on or before it (the first
    one, `applies_from` null, from the beginning)."""

    HISTORY = [
        (1, None, "10.00"),  # set on 2024-01-01, the first: holds before too
        (1, date(2024, 6, 1), "12.00"),
        (1, date(2024, 9, 1), "15.00"),
        (2, None, "7.00"),
        (2**31 - 1, None, "1.00"),
        (2**31 - 1, date(2024, 6, 1), "2.00"),
    ]

    def finish(self) -> merge.Finish:
        named = products([(1, "Shirt", "Shirts"), (2, "Hat", "Hats"), (2**31 - 1, "Big", "X")])
        return merge.finisher(OFI, {"products": named, "prices": prices(self.HISTORY)})

    def test_each_order_gets_the_price_in_effect_on_its_date(self) -> None:
        orders = [
            (1, 1, 2, date(2023, 12, 31), None),  # before the first price's date
            (2, 1, 2, date(2024, 5, 31), None),
            (3, 1, 2, date(2024, 6, 1), None),  # the day a price starts: that one
            (4, 1, 2, date(2024, 8, 31), None),
            (5, 1, 2, date(2024, 9, 1), None),
            (6, 1, 2, date(9999, 12, 31), None),
            (7, 2, 3, date(2030, 1, 1), None),  # another product's days are not its own
            (8, 2**31 - 1, 1, date(2024, 6, 2), None),  # the largest id
            (9, 2**31 - 1, 1, date(1, 1, 1), None),  # the earliest date
        ]
        out = self.finish()(ofi_rows(orders)).to_pylist()
        assert [(r["order_id"], r["unit_price"], r["total_price"]) for r in out] == [
            (1, Decimal("10.00"), Decimal("20.00")),
            (2, Decimal("10.00"), Decimal("20.00")),
            (3, Decimal("12.00"), Decimal("24.00")),
            (4, Decimal("12.00"), Decimal("24.00")),
            (5, Decimal("15.00"), Decimal("30.00")),
            (6, Decimal("15.00"), Decimal("30.00")),
            (7, Decimal("7.00"), Decimal("21.00")),
            (8, Decimal("2.00"), Decimal("2.00")),
            (9, Decimal("1.00"), Decimal("1.00")),
        ]

    def test_a_charged_unit_price_wins(self) -> None:
        out = self.finish()(
            ofi_rows([(1, 1, 3, date(2024, 7, 1), "9.99"), (2, 1, 3, date(2024, 7, 1), None)])
        ).to_pylist()
        assert [(r["unit_price"], r["total_price"]) for r in out] == [
            (Decimal("9.99"), Decimal("29.97")),
            (Decimal("12.00"), Decimal("36.00")),
        ]

    @pytest.mark.parametrize("product_id", [3, 4])
    def test_a_product_without_a_price_fails_the_read(self, product_id: int) -> None:
        """Product 3 has no price; 4 only one from after the order's date (never, as a
        product's first price holds from the beginning; but not a reason to guess)."""
        named = products([(1, "Shirt", "Shirts"), (3, "Bare", "X"), (4, "Late", "X")])
        rows = [*self.HISTORY, (4, date(2024, 6, 1), "3.00")]
        finish = merge.finisher(OFI, {"products": named, "prices": prices(rows)})
        with pytest.raises(merge.MissingPrice):
            finish(ofi_rows([(1, product_id, 1, DAY, None)]))
        # Charged its own price, it needs none.
        [row] = finish(ofi_rows([(1, product_id, 1, DAY, "4.00")])).to_pylist()
        assert row["total_price"] == Decimal("4.00")

    def test_no_prices_at_all_fails_the_read(self) -> None:
        finish = merge.finisher(
            OFI, {"products": products([(1, "Shirt", "Shirts")]), "prices": prices([])}
        )
        with pytest.raises(merge.MissingPrice):
            finish(ofi_rows([(1, 1, 1)]))


def order_rows(
    product_ids: list[int], upload_ids: list[int | None], codes: list[str | None] | None = None
) -> pa.RecordBatch:
    """Orders 1…n of the products, written by the uploads, with their codes (none)."""
    n = len(product_ids)
    return pa.RecordBatch.from_arrays(
        [
            pa.array(range(1, n + 1), pa.int64()),
            pa.array(product_ids, pa.int64()),
            pa.array([1] * n, pa.int32()),
            pa.array([date(2024, 1, 1)] * n, pa.date32()),
            pa.array([Decimal("2.50") if i == 1 else None for i in range(n)], pa.decimal128(12, 2)),
            pa.array(upload_ids, pa.int64()),
            pa.array(codes or [None] * n, pa.string()),
        ],
        schema=feeds.arrow_schema(feeds.ORDER_ROWS),
    )


def product_codes(rows: list[tuple[int, str]]) -> pa.Table:
    ids, codes = zip(*rows, strict=True) if rows else ((), ())
    return pa.Table.from_arrays(
        [pa.array(ids, pa.int64()), pa.array(codes, pa.string())],
        schema=feeds.arrow_schema(feeds.PRODUCT_CODES),
    )


def uploads(rows: list[tuple[int, datetime | None]]) -> pa.Table:
    ids, times = zip(*rows, strict=True) if rows else ((), ())
    return pa.Table.from_arrays(
        [pa.array(ids, pa.int64()), pa.array(times, pa.timestamp("us", tz="UTC"))],
        schema=feeds.arrow_schema(feeds.UPLOAD_TIMES),
    )


class TestOrders:
    def test_changed_at_is_the_uploads_and_null_without_one(self) -> None:
        when = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
        rows = order_rows([1, 1, 1, 1], [4, None, 9, 5])  # tracked, older, running, deleted
        lookups = {"uploads": uploads([(4, when), (9, None)]), "codes": product_codes([])}
        out = merge.finisher(feeds.FeedName.ORDERS, lookups)(rows)
        assert out.schema == feeds.schema(feeds.FeedName.ORDERS)
        assert out.column("changed_at").to_pylist() == [when, None, None, None]
        assert out.column("upload_id").to_pylist() == [4, None, 9, 5]
        assert out.column("unit_price").to_pylist() == [None, Decimal("2.50"), None, None]
        assert out.column("order_code").to_pylist() == [None] * 4
        assert out.column("product_code").to_pylist() == [None] * 4

    def test_codes_beside_the_keys_and_null_for_integer_ids(self) -> None:
        """The line's code comes with its row; its product's from the coded products'
        lookup (negative keys, by search), which integer ids are never in."""
        low = -(2**31)
        rows = order_rows([low, 7, -1, low + 1], [4, 4, None, 4], ["L-1", None, "007", "3f2b-uuid"])
        codes = product_codes([(low + 1, "71053X"), (low, "85123A"), (-1, "Z")])
        lookups = {"uploads": uploads([(4, None)]), "codes": codes}
        out = merge.finisher(feeds.FeedName.ORDERS, lookups)(rows)
        assert out.schema == feeds.schema(feeds.FeedName.ORDERS)
        assert [
            (r["order_id"], r["product_id"], r["order_code"], r["product_code"])
            for r in out.to_pylist()
        ] == [
            (1, low, "L-1", "85123A"),
            (2, 7, None, None),
            (3, -1, "007", "Z"),
            (4, low + 1, "3f2b-uuid", "71053X"),
        ]


class TestIndex:
    def test_a_null_key_is_never_found_even_where_minus_one_is_a_key(self) -> None:
        index = merge._Index(product_codes([(-1, "A"), (-5, "B")]), "product_id")
        wanted = pa.array([None, -1, -5, 3], pa.int64())
        assert index.positions(wanted).to_pylist() == [None, 1, 0, None]  # -5 sorts first
