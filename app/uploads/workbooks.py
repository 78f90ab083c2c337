"""Workbooks (`.xlsx`, python-calamine) and Parquet files (pyarrow) as comma-separated
UTF-8 text, which then takes the same way as any CSV upload: the same header rules,
row rules, rejects and report.

- A workbook's sheet (the first, or `?sheet=`) is read by calamine with formulas as
  their cached values. A date cell becomes `YYYY-MM-DD`; a whole-number numeric cell
  (`21.0`) an integer; another number its 15 significant digits (as Excel shows it); an
  empty row a blank line, so that line numbers stay sheet rows. calamine holds the
  sheet's cells in memory as one dense rectangle, from A1 to the last cell: before it
  runs, the zip is unpacked once as a stream (`_inspect`), refusing more than
  `XLSX_MAX_UNPACKED_BYTES` in all (a zip bomb) or a member whose last cell makes the
  rectangle larger than `XLSX_MAX_CELLS` (a bomb of coordinates: two cells, A1 and
  XFD1048576, would ask for 550 GB), and any ZIP calamine could read as `.ods` or
  `.xlsb` instead.
- A Parquet file is read a piece of a row group at a time (flat memory: pieces of at
  most PIECE_BYTES decoded, the text stopped at MAX_UPLOAD_BYTES) and written as CSV by
  pyarrow's own writer: integers, decimals (by value: `179.3400` as `179.34`), floats
  (shortest form that reads back the same), dates and strings as text; timestamps at
  midnight as dates. Columns of other types (lists, structs, binary) refuse the file
  when required, and are left out with a warning otherwise.
"""

from __future__ import annotations

import csv
import datetime
import io
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from app.uploads.errors import TooLarge, Undecodable

BUFFER_BYTES = 1 << 20
CSV_BATCH_ROWS = 64 * 1024
READ_BYTES = 1 << 20


@dataclass(frozen=True)
class Limits:
    """What a workbook may unpack to (settings XLSX_MAX_UNPACKED_BYTES, XLSX_MAX_CELLS),
    and what a Parquet file's rows may come to as text (MAX_UPLOAD_BYTES, as for a CSV)."""

    max_unpacked_bytes: int = 1 << 30
    max_cells: int = 20_000_000
    max_text_bytes: int = 1 << 30


@dataclass
class Table:
    """Rows as CSV buffers; the lines before the header; warnings for the report."""

    rows: Iterator[bytes]
    line_offset: int = 0
    warnings: list[str] = field(default_factory=list)


# --- workbooks -------------------------------------------------------------------------

# Cell references of two or three letters (columns past Z), and row references: the
# sheet's extent. Single letters need no look: a sheet up to column Z is 26 wide.
_WIDE_CELL_REF = re.compile(rb' r="([A-Z]{2,3})[0-9]{1,9}"')
_ROW_REF = re.compile(rb'<row r="([0-9]{1,9})"')
NARROW = 26


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + letter - 64
    return number


def len_then_value(ref: bytes) -> tuple[int, bytes]:
    return len(ref), ref


def _long_cell_rows(xml: bytes, rows: int) -> int:
    """The largest row a cell reference names, where it has at least as many digits as
    `rows` (the rows' own references bound the rest, up to their digit count)."""
    digits = len(str(rows))
    pattern = re.compile(rb' r="[A-Z]{1,3}([0-9]{%d,9})"' % digits)
    found = pattern.findall(xml)
    return int(max(found, key=len_then_value)) if found else rows


def _narrow_width(xml: bytes, known: int) -> int:
    """The last column up to Z that a cell reference in `xml` names, if past `known`."""
    for number in range(NARROW, known, -1):
        if xml.find(b' r="' + bytes([64 + number])) >= 0:
            return number
    return known


def _too_large(limits: Limits, *, cells: bool) -> TooLarge:
    if cells:
        return TooLarge(
            limits.max_cells,
            what="A sheet of the workbook spans more cells than",
            setting="XLSX_MAX_CELLS",
            unit="cells",
        )
    return TooLarge(
        limits.max_unpacked_bytes,
        what="The workbook unpacks to more than",
        setting="XLSX_MAX_UNPACKED_BYTES",
    )


# The parts by which calamine would read a ZIP as another format than .xlsx when its
# .xlsx parts do not read (it tries each in turn): an OpenDocument spreadsheet's rows and
# columns repeat by count, unmeasured here (1.7 KB of .ods asked for 3.8 GB), and an
# .xlsb's sheets are binary.
OTHER_SPREADSHEETS = frozenset({"content.xml", "xl/workbook.bin"})
NOT_XLSX = (
    "The file is a ZIP but not an .xlsx workbook (an OpenDocument .ods or a binary .xlsb"
    " is not read): save it as .xlsx or CSV."
)


def _inspect(spool: IO[bytes], limits: Limits) -> None:
    """Refuse a ZIP that calamine could read as another spreadsheet format, and a
    workbook whose members say they unpack past the limit; then unpack them as a stream,
    counting (members may lie), and measure each member's extent from A1 by its row and
    cell references (one without references by its counts). Every member: a sheet is
    wherever the workbook's relationships say, not only in `xl/worksheets/`."""
    try:
        archive = zipfile.ZipFile(spool)
        members = archive.infolist()
        if OTHER_SPREADSHEETS & {info.filename for info in members}:
            raise Undecodable(NOT_XLSX)
        if sum(info.file_size for info in members) > limits.max_unpacked_bytes:
            raise _too_large(limits, cells=False)
        unpacked = 0
        for info in members:
            rows = cols = rows_seen = cells_seen = 0
            tail = b""
            with archive.open(info) as member:
                while chunk := member.read(READ_BYTES):
                    unpacked += len(chunk)
                    if unpacked > limits.max_unpacked_bytes:
                        raise _too_large(limits, cells=False)
                    data = tail + chunk
                    cut = data.rfind(b"<")
                    whole, tail = (data[:cut], data[cut:]) if cut > 0 else (data, b"")
                    rows_seen += whole.count(b"<row")
                    cells_seen += whole.count(b"<c ") + whole.count(b"<c>")
                    cols = max(cols, _narrow_width(whole, cols))
                    wide = set(_WIDE_CELL_REF.findall(whole))
                    if wide:
                        cols = max(cols, *map(_column_number, wide))
                    refs = _ROW_REF.findall(whole)
                    if refs:
                        rows = max(rows, int(max(refs, key=len_then_value)))
                    rows = max(rows, _long_cell_rows(whole, rows))
            width = cols or cells_seen  # without references: as if all in one row
            if max(rows, rows_seen) * width > limits.max_cells:
                raise _too_large(limits, cells=True)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
        raise Undecodable(f"The file starts as a workbook (a ZIP) but is not one: {exc}.") from None
    finally:
        spool.seek(0)


def open_sheet(spool: IO[bytes], sheet: str | None, limits: Limits) -> Table:
    """The workbook's sheet (the first, or the one named) as CSV buffers."""
    _inspect(spool, limits)
    import python_calamine  # lazily: only workbooks need it

    try:
        book = python_calamine.CalamineWorkbook.from_filelike(spool)
        names = book.sheet_names
        if sheet is None:
            if not names:
                raise Undecodable("The workbook has no sheet.")
            found = book.get_sheet_by_index(0)
        elif sheet in names:
            found = book.get_sheet_by_name(sheet)
        else:
            raise Undecodable(
                f"The workbook has no sheet {sheet!r}.", details={"sheets": list(names)}
            )
    except Undecodable:
        raise
    except Exception as exc:  # calamine's errors are plain exceptions of several kinds
        raise Undecodable(f"The workbook cannot be read: {exc}.") from None
    rows = iter(found.iter_rows())
    skipped = 0
    for row in rows:  # the header is the first row with a value; rows above it count
        cells = [_cell(v) for v in row]
        if any(cells):
            return Table(_sheet_rows(cells, rows), line_offset=skipped)
        skipped += 1
    return Table(iter(()), line_offset=skipped)


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e17:
            return str(int(value))
        return f"{value:.15g}"
    if isinstance(value, datetime.datetime):
        if value.time() == datetime.time():
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return str(value)
    return str(value)


def _sheet_rows(header: list[str], rows: Iterator[Any]) -> Iterator[bytes]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        cells = [_cell(v) for v in row]
        if any(cells):
            writer.writerow(cells)
        else:
            out.write("\n")  # a blank line: not a row, but its number is kept
        if out.tell() >= BUFFER_BYTES:
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
    if out.tell():
        yield out.getvalue().encode()


# --- Parquet -----------------------------------------------------------------------------


def open_parquet(spool: IO[bytes], limits: Limits) -> Table:
    """The Parquet file's rows as CSV buffers, a piece of a row group at a time."""
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
        raise Undecodable(f"The file starts as Parquet but cannot be read: {exc}.") from None
    from app.uploads.rules import RULES

    required = {name for rules in RULES.values() for name in rules.required}
    kept: list[str] = []
    dropped: list[str] = []
    for column in schema:
        if _writable(column.type):
            kept.append(column.name)
        elif column.name.strip().casefold() in required:
            raise Undecodable(
                f"Column {column.name!r} is of type {column.type}, which holds no single value.",
                details={"column": column.name, "type": str(column.type)},
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
    csv.writer(header, lineterminator="\n").writerow(columns)
    yield header.getvalue().encode()
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
                    raise TooLarge(
                        max_text_bytes, what="The Parquet file's rows, as text, come to more than"
                    )
                yield sink.getvalue()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise Undecodable(f"The Parquet file cannot be read: {exc}.") from None


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
