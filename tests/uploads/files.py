"""Files in other formats and dialects, made in code: workbooks (xlsxwriter, and
hand-made ones: a sheet kept elsewhere, an OpenDocument spreadsheet), Parquet (pyarrow),
CSV in other delimiters and encodings, and the zip bomb."""

from __future__ import annotations

import csv
import datetime
import io
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any


def xlsx(
    rows: Iterable[Sequence[Any]], *, sheet: str = "Sheet1", first_sheet: str | None = None
) -> bytes:
    """A workbook whose sheet holds `rows` from A1; a date is written as a date cell, a
    value `("=formula", cached)` as a formula with its cached value; `first_sheet` adds an
    empty sheet before it."""
    import xlsxwriter

    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    if first_sheet is not None:
        book.add_worksheet(first_sheet).write(0, 0, "nothing here")
    page = book.add_worksheet(sheet)
    date_cell = book.add_format({"num_format": "dd/mm/yyyy"})
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, tuple):
                page.write_formula(r, c, value[0], None, value[1])
            elif isinstance(value, datetime.date):
                page.write_datetime(r, c, value, date_cell)
            else:
                page.write(r, c, value)
    book.close()
    return out.getvalue()


def xlsx_sheet_elsewhere(rows: Iterable[Sequence[Any]], *, far_cell: str | None = None) -> bytes:
    """A workbook whose sheet is kept out of `xl/worksheets/` (its relationship says
    where: a reader follows it), with one more cell at `far_cell` (`XFD1048576`) if given."""
    source = zipfile.ZipFile(io.BytesIO(xlsx(rows)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            name, data = info.filename, source.read(info)
            if name == "xl/worksheets/sheet1.xml":
                name = "xl/elsewhere/data.xml"
                if far_cell is not None:
                    row = far_cell.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
                    cell = f'<row r="{row}"><c r="{far_cell}"><v>1</v></c></row>'
                    data = data.replace(b"</sheetData>", cell.encode() + b"</sheetData>")
            elif name == "xl/_rels/workbook.xml.rels":
                data = data.replace(b"worksheets/sheet1.xml", b"elsewhere/data.xml")
            archive.writestr(name, data)
    return out.getvalue()


def ods(rows: Iterable[Sequence[str]], *, repeated: tuple[int, int] | None = None) -> bytes:
    """An OpenDocument spreadsheet (`.ods`, a ZIP too) of text cells; `repeated` adds one
    row of one cell repeated (rows, columns) times, as the format allows in a few bytes."""
    cell = '<table:table-cell office:value-type="string"><text:p>{}</text:p></table:table-cell>'
    body = "".join(
        "<table:table-row>" + "".join(cell.format(v) for v in row) + "</table:table-row>"
        for row in rows
    )
    if repeated is not None:
        body += (
            f'<table:table-row table:number-rows-repeated="{repeated[0]}">'
            f'<table:table-cell table:number-columns-repeated="{repeated[1]}"'
            ' office:value-type="float" office:value="1"><text:p>1</text:p></table:table-cell>'
            "</table:table-row>"
        )
    office = "urn:oasis:names:tc:opendocument:xmlns"
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content'
        f' xmlns:office="{office}:office:1.0" xmlns:table="{office}:table:1.0"'
        f' xmlns:text="{office}:text:1.0" office:version="1.2"><office:body>'
        f'<office:spreadsheet><table:table table:name="Sheet1">{body}</table:table>'
        "</office:spreadsheet></office:body></office:document-content>"
    )
    manifest = (
        f'<?xml version="1.0" encoding="UTF-8"?><manifest:manifest'
        f' xmlns:manifest="{office}:manifest:1.0" manifest:version="1.2">'
        '<manifest:file-entry manifest:full-path="/"'
        ' manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "mimetype",
            "application/vnd.oasis.opendocument.spreadsheet",
            compress_type=zipfile.ZIP_STORED,
        )
        archive.writestr("META-INF/manifest.xml", manifest)
        archive.writestr("content.xml", content)
    return out.getvalue()


def parquet(columns: dict[str, Any], *, row_group_size: int | None = None) -> bytes:
    """A Parquet file of the given pyarrow arrays (or lists)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(columns)
    out = io.BytesIO()
    pq.write_table(table, out, row_group_size=row_group_size)
    return out.getvalue()


def csv_text(
    path_or_text: str, *, delimiter: str, encoding: str, decimal_comma: bool = False
) -> bytes:
    """A comma-separated UTF-8 text rewritten in another delimiter and encoding (prices
    with a decimal comma if asked: every field that is a decimal number)."""
    rows = list(csv.reader(io.StringIO(path_or_text, newline="")))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    for i, row in enumerate(rows):
        if decimal_comma and i:
            row = [_comma(f) for f in row]
        writer.writerow(row)
    return out.getvalue().encode(encoding)


def _comma(field: str) -> str:
    head, dot, tail = field.partition(".")
    if dot and head.lstrip("-").isdigit() and tail.isdigit():
        return f"{head},{tail}"
    return field


def zip_bomb(unpacked: int) -> bytes:
    """A workbook-looking zip whose sheet unpacks to `unpacked` bytes of XML from a few
    MB: one deflated block, full-flushed, repeated (each repeat decodes alike)."""
    piece = b'<row><c r="A1"><v>1</v></c></row>' * 30_000
    count = unpacked // len(piece) + 1
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(piece) + compressor.flush(zlib.Z_FULL_FLUSH)
    final = compressor.flush()
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(piece, crc)
    data = block * count + final
    size = len(piece) * count
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", b"<?xml version='1.0'?><Types/>")
        archive.writestr("xl/workbook.xml", b"<workbook/>")
    head = out.getvalue()
    # Append the bomb's member by hand: local header, data, then a new central directory
    # holding the two small members above and this one.
    archive_dir = zipfile.ZipFile(io.BytesIO(head))
    body = bytearray(head[: archive_dir.start_dir])
    name = b"xl/worksheets/sheet1.xml"
    offset = len(body)
    body += struct.pack(
        "<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(data), size, len(name), 0
    )
    body += name + data
    central = bytearray()
    for info in archive_dir.infolist():
        central += _central(
            info.filename.encode(),
            info.CRC,
            info.compress_size,
            info.file_size,
            info.header_offset,
            info.compress_type,
        )
    central += _central(name, crc, len(data), size, offset, 8)
    start = len(body)
    body += central
    body += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 3, 3, len(central), start, 0)
    return bytes(body)


def _central(name: bytes, crc: int, csize: int, size: int, offset: int, method: int) -> bytes:
    return struct.pack(
        "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0, crc, csize, size,
        len(name), 0, 0, 0, 0, 0, offset,
    ) + name  # fmt: skip


def xlsx_edited(rows: Iterable[Sequence[Any]], edit: Callable[[str, bytes], bytes]) -> bytes:
    """A workbook of `rows` (xlsxwriter's), each member passed through `edit(name, xml)`."""
    source = zipfile.ZipFile(io.BytesIO(xlsx(rows)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            archive.writestr(info.filename, edit(info.filename, source.read(info)))
    return out.getvalue()


def xlsx_with_row(rows: Iterable[Sequence[Any]], row_xml: bytes) -> bytes:
    """A workbook of `rows` with one more row, written as given, at the end of its sheet
    (a hand-written cell reference: lower case, zero padded, quoted or spaced otherwise)."""

    def add(name: str, xml: bytes) -> bytes:
        if name == "xl/worksheets/sheet1.xml":
            return xml.replace(b"</sheetData>", row_xml + b"</sheetData>")
        return xml

    return xlsx_edited(rows, add)


def xlsx_shared_string_bomb(
    rows: Sequence[Sequence[Any]], *, length: int, cells: int, empty_items: int = 0
) -> bytes:
    """A workbook of `rows` with one more column whose `cells` cells all name one shared
    string of `length` bytes (a few KB compressed: the string is one letter repeated).
    `empty_items` empty strings come first in the table (calamine skips them, so an
    index names a later item there than in the table's order)."""
    marker = "SHARED-STRING-BOMB"
    body: list[list[Any]] = [[*rows[0], "note"]]
    body += [[*row, marker] for row in rows[1:]]
    body += [[*[None] * len(rows[0]), marker] for _ in range(cells - len(rows) + 1)]

    def grow(name: str, xml: bytes) -> bytes:
        if name != "xl/sharedStrings.xml":
            return xml
        xml = xml.replace(marker.encode(), b"x" * length)
        first = xml.index(b"<si>")
        return xml[:first] + b"<si></si>" * empty_items + xml[first:]

    return xlsx_edited(body, grow)
