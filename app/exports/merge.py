"""The order feeds' columns that live in other tables, joined in Arrow.

PostgreSQL copies orders alone (`feeds.ORDERS`, `feeds.order_full_information_sql`);
the lookups read in the same snapshot (products by id, prices by product and day, upload
times by id, coded products' codes by id) are joined here, per batch, by binary search
over their sorted keys. An order's `order_code` comes with its row; its `product_code`
from the product lookup (null for integer ids, whose products are not in the codes). An
order's `unit_price` is the price it was sold at: the one it was charged, else its
product's price in effect on its date (the product's last price whose `applies_from` is
on or before it: a product's prices cover every day once). `total_price` is
`quantity × unit_price` in exact decimal arithmetic, as PostgreSQL's `numeric` computes
it for the CSV export: no rounding happens (12,2 × 10 digits fits 22,2).

Pure: batches and tables in, a batch of the feed's schema out; no database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from app.exports import feeds

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

Finish = Callable[["pa.RecordBatch"], "pa.RecordBatch"]


class MissingProduct(LookupError):
    """An order whose product was not in the snapshot's lookup: never, under the
    foreign key; a file with an empty name would be worse than a failed read."""


class MissingPrice(LookupError):
    """An order at the list price whose product had no price on its date in the
    snapshot: never, as every product has one for any day."""


def finisher(feed: feeds.FeedName, lookups: Mapping[str, pa.Table]) -> Finish:
    """What turns a batch of the COPY's rows into a batch of `feed`'s file."""
    if feed is feeds.FeedName.ORDERS:
        return _orders(lookups["uploads"], lookups["codes"])
    if feed is feeds.FeedName.ORDER_FULL_INFORMATION:
        return _order_full_information(lookups["products"], lookups["prices"])
    return lambda batch: batch


class _Index:
    """A lookup table by its integer key, for the rows of many keys at once: a direct
    table of rows by key when the keys are small (product ids 1..n: one gather), else a
    binary search over the sorted keys."""

    DIRECT_MAX_KEY = 1 << 22  # a 16 MiB table of rows at most

    def __init__(self, table: pa.Table, key: str) -> None:
        import numpy as np

        table = table.sort_by(key)
        self.keys: np.ndarray = table.column(key).to_numpy()
        self.columns = {name: table.column(name).combine_chunks() for name in table.column_names}
        self.direct: np.ndarray | None = None
        if len(self.keys) and self.keys[0] >= 0 and self.keys[-1] < self.DIRECT_MAX_KEY:
            self.direct = np.full(int(self.keys[-1]) + 2, -1, dtype=np.int32)
            self.direct[self.keys] = np.arange(len(self.keys), dtype=np.int32)

    def positions(self, keys: pa.Array) -> pa.Array:
        """Each key's row in the table; null where the key is null or absent."""
        import numpy as np
        import pyarrow as pa

        if not len(self.keys):
            return pa.nulls(len(keys), pa.int32())
        wanted = keys.fill_null(-1).to_numpy()
        if self.direct is not None:
            # Keys past the table (or null, -1) land on its last cell, always -1.
            beyond = len(self.direct) - 1
            at = self.direct[np.where((wanted < 0) | (wanted > beyond), beyond, wanted)]
            found = at >= 0
        else:
            at = np.searchsorted(self.keys, wanted).astype(np.int32)
            np.minimum(at, len(self.keys) - 1, out=at)
            found = self.keys[at] == wanted
            if keys.null_count:  # -1 may be a key here (a coded product's)
                found &= keys.is_valid().to_numpy(zero_copy_only=False)
        return pa.array(at, mask=~found)


class _InEffect:
    """The price in effect per (product, day), for many at once: the price rows sorted by
    (product, `applies_from`, null first) as one int64 key each; for a wanted (product,
    day), the last row at or before it, if it is of that product. A product with one price
    (no history) is found by its id alone, with no search."""

    # A day (date32, within ±2^31) shifted to 0…2^32 below the product id's bits; a null
    # applies_from (the first price, from the beginning) sorts first.
    DAY_SHIFT = 1 << 31

    def __init__(self, table: pa.Table) -> None:
        import numpy as np
        import pyarrow as pa

        products = table.column("product_id").combine_chunks().to_numpy()
        starts = table.column("applies_from").combine_chunks().cast(pa.int32())
        days = starts.fill_null(-self.DAY_SHIFT).to_numpy().astype(np.int64) + self.DAY_SHIFT
        keys = (products.astype(np.int64) << 32) | days
        order = keys.argsort(kind="stable")
        self.keys, self.products, self.days = keys[order], products[order], days[order]
        self.prices = table.column("price").combine_chunks().take(order)
        # Each product's first row and number of rows, by product id.
        ids, first, count = np.unique(self.products, return_index=True, return_counts=True)
        runs = pa.table({"product_id": pa.array(ids, pa.int64()), "first": first, "count": count})
        self.runs = _Index(runs, "product_id")

    def prices_on(self, products: pa.Array, days: pa.Array) -> pa.Array:
        """The price in effect for each (product, day); null where there is none."""
        import numpy as np
        import pyarrow as pa

        if not len(self.keys):
            return pa.nulls(len(products), self.prices.type)
        run = self.runs.positions(products)
        known = run.is_valid().to_numpy(zero_copy_only=False)
        run = run.fill_null(0).to_numpy()
        at = self.runs.columns["first"].to_numpy()[run]
        wanted_products = products.to_numpy()
        wanted_days = days.cast(pa.int32()).to_numpy().astype(np.int64) + self.DAY_SHIFT
        several = known & (self.runs.columns["count"].to_numpy()[run] > 1)
        if several.all():  # every product with a history: no subset to take
            at = self._search(wanted_products, wanted_days)
        elif several.any():
            at[several] = self._search(wanted_products[several], wanted_days[several])
        found = known & (self.products[at] == wanted_products) & (self.days[at] <= wanted_days)
        return self.prices.take(pa.array(at, mask=~found))

    def _search(self, products: np.ndarray, days: np.ndarray) -> np.ndarray:
        """The last row at or before each (product, shifted day); 0 where none is."""
        import numpy as np

        wanted = (products.astype(np.int64) << 32) | days
        at: np.ndarray = np.maximum(np.searchsorted(self.keys, wanted, side="right") - 1, 0)
        return at


def _orders(uploads: pa.Table, codes: pa.Table) -> Finish:
    import pyarrow as pa

    index = _Index(uploads, "upload_id")
    coded = _Index(codes, "product_id")
    target = feeds.schema(feeds.FeedName.ORDERS)
    changed_at = index.columns["changed_at"]
    product_code = coded.columns["product_code"]

    def finish(rows: pa.RecordBatch) -> pa.RecordBatch:
        columns = {name: rows.column(name) for name in rows.schema.names}
        columns["changed_at"] = changed_at.take(index.positions(rows.column("upload_id")))
        # Only coded products are in `codes`: an integer id finds none, and its code is null.
        columns["product_code"] = product_code.take(coded.positions(rows.column("product_id")))
        return pa.RecordBatch.from_arrays([columns[n] for n in target.names], schema=target)

    return finish


def _order_full_information(products: pa.Table, prices: pa.Table) -> Finish:
    import pyarrow as pa
    import pyarrow.compute as pc

    index = _Index(products, "product_id")
    in_effect = _InEffect(prices)
    target = feeds.schema(feeds.FeedName.ORDER_FULL_INFORMATION)
    quantity_type = pa.decimal128(10, 0)  # an int32 quantity exactly
    total_type = target.field("total_price").type

    def finish(rows: pa.RecordBatch) -> pa.RecordBatch:
        at = index.positions(rows.column("product_id"))
        if at.null_count:
            raise MissingProduct("an order's product is missing from the snapshot")
        quantity = rows.column("quantity")
        charged = rows.column("unit_price")
        price = charged
        if charged.null_count:
            listed = in_effect.prices_on(
                rows.column("product_id"), rows.column("order_created_date")
            )
            price = pc.coalesce(charged, listed)
            if price.null_count:
                raise MissingPrice("an order's product has no price on its date in the snapshot")
        total = pc.multiply_checked(price, quantity.cast(quantity_type)).cast(total_type)
        columns = {
            "order_created_date": rows.column("order_created_date"),
            "order_id": rows.column("order_id"),
            "product_id": rows.column("product_id"),
            "product_name": index.columns["product_name"].take(at),
            "category": index.columns["category"].take(at),
            "quantity": quantity,
            "unit_price": price,
            "total_price": total,
            "order_code": rows.column("order_code"),
            "product_code": index.columns["product_code"].take(at),
        }
        return pa.RecordBatch.from_arrays([columns[n] for n in target.names], schema=target)

    return finish
