"""A Parquet file's rows as CSV, read by pyarrow.

The file is read a piece of a row group at a time (flat memory: pieces of at most
PIECE_BYTES decoded, the text stopped at MAX_UPLOAD_BYTES) and written as CSV by
pyarrow's own writer: integers, decimals (by value: `179.3400` as `179.34`), floats
(shortest form that reads back the same), dates and strings as text; timestamps at
midnight as dates. Columns of other types (lists, structs, binary) refuse the file when
required, and are left out with a warning otherwise.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterator
from typing import IO, Any

from app.uploads.tabular import Table, TabularLimits, too_large, undecodable

CSV_BATCH_ROWS = 64 * 1024


def open_parquet(spool: IO[bytes], limits: TabularLimits, required: Collection[str]) -> Table:
    """The Parquet file's rows as CSV buffers, a piece of a row group at a time;
    `required` are the column names (folded) that must hold single values."""
    import pyarrow as pa  # lazily: only Parquet uploads need it
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(spool)
        # Text columns are read as dictionaries: a long value that many rows repeat stays
        # one value until the rows are converted, a bounded piece at a time (_pieces).
        texts = [c.path for c in parquet.schema if c.physical_type == "BYTE_ARRAY"]
        if texts:
            parquet = pq.ParquetFile(spool, read_dictionary=texts, metadata=parquet.metadata)
        schema = parquet.schema_arrow
    except (pa.ArrowException, OSError, ValueError) as exc:
        if isinstance(exc, MemoryError):  # ArrowMemoryError: the process's limit, not the file
            raise
        raise undecodable(f"The file starts as Parquet but cannot be read: {exc}.") from None
    kept: list[str] = []
    dropped: list[str] = []
    for column in schema:
        if _writable(column.type):
            kept.append(column.name)
        elif column.name.strip().casefold() in required:
            raise undecodable(
                f"Column {column.name!r} is of type {column.type}, which holds no single value.",
                {"column": column.name, "type": str(column.type)},
            )
        else:
            dropped.append(column.name)
    warnings = []
    if dropped:
        shown = ", ".join(repr(c) for c in dropped[:20])
        warnings.append(f"Columns of types with no single value left out: {shown}.")
    rows = _parquet_rows(parquet, kept, limits.max_text_bytes)
    return Table(rows, line_offset=-1, warnings=warnings)


def _writable(kind: Any) -> bool:
    import pyarrow.types as t

    if t.is_dictionary(kind):
        return _writable(kind.value_type)
    return bool(
        t.is_integer(kind)
        or t.is_floating(kind)
        or t.is_decimal(kind)
        or t.is_string(kind)
        or t.is_large_string(kind)
        or t.is_date(kind)
        or t.is_timestamp(kind)
        or t.is_boolean(kind)
        or t.is_null(kind)
    )


# What one piece of a Parquet file may decode to at once: a text value's bytes, about
# VALUE_BYTES for any other value. A few compressed bytes can stand for many rows of one
# long value, or for many columns of a constant: rows are read and converted in pieces of
# this size, and the whole file's text stops at the limit, so memory stays flat.
PIECE_BYTES = 16 << 20
VALUE_BYTES = 32


def _parquet_rows(parquet: Any, columns: list[str], max_text_bytes: int) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    header = io.StringIO()
    # Quoted if a name holds a line break, a lone CR included (the csv module quotes
    # only its terminator's characters), and ended by LF as pyarrow ends the rows.
    csv.writer(header, lineterminator="\r\n").writerow(columns)
    yield header.getvalue()[:-2].encode() + b"\n"
    if not columns:
        return
    options = pacsv.WriteOptions(include_header=False)
    rows = max(1, min(CSV_BATCH_ROWS, PIECE_BYTES // (VALUE_BYTES * len(columns))))
    written = 0
    try:
        # One thread: columns decoded one after the other (no faster here, and never
        # several columns' pages in memory at once).
        for batch in parquet.iter_batches(batch_size=rows, columns=columns, use_threads=False):
            for piece in _pieces(batch):
                sink = io.BytesIO()
                pacsv.write_csv(_plain(piece), sink, options)
                written += sink.tell()
                if written > max_text_bytes:
                    raise too_large(
                        max_text_bytes,
                        what="The Parquet file's rows, as text, come to more than",
                        setting="MAX_UPLOAD_BYTES",
                    )
                yield sink.getvalue()
    except (pa.ArrowException, OSError, ValueError) as exc:
        if isinstance(exc, MemoryError):  # ArrowMemoryError: the process's limit, not the file
            raise
        raise undecodable(f"The Parquet file cannot be read: {exc}.") from None


def _pieces(batch: Any) -> Iterator[Any]:
    """The batch in slices that each decode to at most PIECE_BYTES (a row at least)."""
    import bisect

    import pyarrow.compute as pc
    import pyarrow.types as t

    fixed = VALUE_BYTES * batch.num_columns
    sizes = None
    for array in batch.columns:
        if t.is_dictionary(array.type) and _is_text(array.type.value_type):
            lengths = pc.binary_length(array.dictionary).take(array.indices)
        elif _is_text(array.type):
            lengths = pc.binary_length(array)
        else:
            continue
        lengths = pc.fill_null(pc.cast(lengths, "int64"), 0)
        sizes = lengths if sizes is None else pc.add(sizes, lengths)
    text = 0 if sizes is None else pc.sum(sizes).as_py() or 0
    if fixed * batch.num_rows + text <= PIECE_BYTES:
        yield batch
        return
    assert sizes is not None  # fixed-width values alone fit: the batch size saw to it
    running = pc.cumulative_sum(pc.add(sizes, fixed)).to_pylist()
    start = 0
    while start < batch.num_rows:
        before = running[start - 1] if start else 0
        end = max(start + 1, bisect.bisect_right(running, before + PIECE_BYTES, lo=start))
        yield batch.slice(start, end - start)
        start = end


def _is_text(kind: Any) -> bool:
    import pyarrow.types as t

    return bool(t.is_string(kind) or t.is_large_string(kind))


def _plain(batch: Any) -> Any:
    """The batch with dictionary columns decoded, timestamps at midnight as dates, and
    decimals by value: without the zeros their scale adds (`179.3400` is `179.34`, which
    has 2 decimals; `2.00` is `2`, an integer, as a float `2.0` is)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as t

    arrays = []
    for array in batch.columns:
        if t.is_dictionary(array.type):
            array = array.dictionary_decode()
        if t.is_timestamp(array.type):
            day = pc.cast(pc.floor_temporal(array, unit="day"), pa.date32())
            midnight = pc.equal(pc.floor_temporal(array, unit="day"), array)
            array = pc.if_else(midnight, pc.cast(day, pa.string()), pc.cast(array, pa.string()))
        if t.is_decimal(array.type) and array.type.scale > 0:
            text = pc.cast(array, pa.string())
            array = pc.replace_substring_regex(text, pattern=r"\.?0+$", replacement="")
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)
