"""The order feeds' columns that live in other tables, joined in Arrow.

PostgreSQL copies orders alone (`feeds.ORDERS`, `feeds.ORDER_FULL_INFORMATION`); the
lookups read in the same snapshot (products by id, upload times by id) are joined here,
per batch, by binary search over their sorted keys. `total_price` is
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


def finisher(feed: feeds.FeedName, lookups: Mapping[str, pa.Table]) -> Finish:
    """What turns a batch of the COPY's rows into a batch of `feed`'s file."""
    if feed is feeds.FeedName.ORDERS:
        return _orders(lookups["uploads"])
    if feed is feeds.FeedName.ORDER_FULL_INFORMATION:
        return _order_full_information(lookups["products"])
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
        return pa.array(at, mask=~found)


def _orders(uploads: pa.Table) -> Finish:
    import pyarrow as pa

    index = _Index(uploads, "upload_id")
    target = feeds.schema(feeds.FeedName.ORDERS)
    changed_at = index.columns["changed_at"]

    def finish(rows: pa.RecordBatch) -> pa.RecordBatch:
        at = index.positions(rows.column("upload_id"))
        columns = [rows.column(name) for name in target.names[:-1]]
        return pa.RecordBatch.from_arrays([*columns, changed_at.take(at)], schema=target)

    return finish


def _order_full_information(products: pa.Table) -> Finish:
    import pyarrow as pa
    import pyarrow.compute as pc

    index = _Index(products, "product_id")
    target = feeds.schema(feeds.FeedName.ORDER_FULL_INFORMATION)
    quantity_type = pa.decimal128(10, 0)  # an int32 quantity exactly
    total_type = target.field("total_price").type

    def finish(rows: pa.RecordBatch) -> pa.RecordBatch:
        at = index.positions(rows.column("product_id"))
        if at.null_count:
            raise MissingProduct("an order's product is missing from the snapshot")
        quantity = rows.column("quantity")
        price = index.columns["unit_price"].take(at)
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
        }
        return pa.RecordBatch.from_arrays([columns[n] for n in target.names], schema=target)

    return finish
