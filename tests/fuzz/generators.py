"""Structure-aware generators of hostile uploads (hypothesis strategies).

Each starts from a file a real writer makes (xlsxwriter, pyarrow, a CSV of the expected
columns, a browser's multipart body) and then breaks it where its parser looks: the
zip's directory and members, the sheet's cell references, types and shared strings;
Parquet's footer, schema, encodings and pages; CSV's dialect, quoting and encodings;
multipart's boundary, part headers and framing. Every draw is a bytes value hypothesis
can shrink, so a failure comes back as a small file.
"""

from __future__ import annotations

import datetime
import decimal
import io
import struct
import zipfile
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from tests.uploads.files import xlsx

HEADERS = {
    "products": ["id", "name", "category", "price"],
    "orders": ["id", "product_id", "quantity", "created_date"],
}
KINDS = st.sampled_from(sorted(HEADERS))

# Text that parsers and the rules trip on: quotes, separators, line breaks, formulas,
# controls, BOMs, RTL overrides, surrogate-adjacent and astral characters.
HOSTILE_TEXT = st.text(
    alphabet=st.sampled_from(
        [
            *list("aZ09 ,;|\t\"'\r\n=+-@.%&<>\\/"),
            "\x00",
            "\x1b",
            "\ufeff",
            "\u202e",
            "é",
            "😀",
            "\U0010fffd",
        ]
    ),
    max_size=40,
)
NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(
        allow_nan=False, allow_infinity=False, places=4, min_value=-(10**20), max_value=10**20
    ),
)
CELL = st.one_of(
    st.none(),
    NUMBERS,
    HOSTILE_TEXT,
    st.booleans(),
    st.dates(min_value=datetime.date(1900, 3, 1), max_value=datetime.date(9999, 12, 31)),
)


@dataclass(frozen=True)
class Upload:
    """A file to post as `kind`, with the query it goes with."""

    kind: str
    content: bytes
    filename: str
    params: dict[str, str]


def _rows(draw: st.DrawFn, kind: str, cells: st.SearchStrategy[Any]) -> list[list[Any]]:
    header: list[Any] = list(HEADERS[kind])
    if draw(st.booleans()):
        header = draw(st.permutations(header))
    if draw(st.integers(0, 4)) == 0:
        header = [*header, draw(HOSTILE_TEXT)]
    if draw(st.integers(0, 6)) == 0:
        header = header[: draw(st.integers(0, len(header)))]
    good = _good_rows(kind, draw(st.integers(0, 4)))
    odd = draw(st.lists(st.lists(cells, min_size=0, max_size=len(header) + 2), max_size=4))
    rows = good + odd
    draw(st.randoms(use_true_random=False)).shuffle(rows)
    return [header, *rows]


def _good_rows(kind: str, n: int) -> list[list[Any]]:
    if kind == "products":
        return [[100 + i, f"Item {i}", "Things", decimal.Decimal("9.99") + i] for i in range(n)]
    return [[100 + i, 1, 1 + i, datetime.date(2024, 12, 1 + i)] for i in range(n)]


# --- workbooks ---------------------------------------------------------------------------

_REF_LETTERS = st.sampled_from(
    ["A", "B", "C", "D", "E", "d", "Z", "AA", "xfd", "XFD", "XFE", "ZZZ", "AAAA", ""]
)
_REF_DIGITS = st.sampled_from(
    [
        "1",
        "2",
        "3",
        "7",
        "40",
        "1000",
        "65536",
        "01",
        "0001048576",
        "1048576",
        "0",
        "1048577",
        "4294967297",
        "99999999999",
        "",
    ]
)
_QUOTES = st.sampled_from(['"', "'"])
_EQUALS = st.sampled_from(["=", " = ", "=\t", "\n="])
_SPACE = st.sampled_from([" ", "\t", "\n", "\r\n"])


@st.composite
def cell_xml(draw: st.DrawFn) -> str:
    """One cell, its reference and type drawn from the forms calamine reads."""
    ref = ""
    if draw(st.integers(0, 4)):
        q = draw(_QUOTES)
        ref = f"{draw(_SPACE)}r{draw(_EQUALS)}{q}{draw(_REF_LETTERS)}{draw(_REF_DIGITS)}{q}"
    kind = draw(
        st.sampled_from(
            ["", ' t="s"', ' t="b"', ' t="e"', ' t="str"', ' t="d"', ' t="n"', ' t="inlineStr"']
        )
    )
    style = draw(st.sampled_from(["", ' s="1"', ' s="99999"']))
    value = draw(
        st.sampled_from(
            [
                "1",
                "0",
                "-1",
                "2",
                "99999999",
                "1e400",
                "NaN",
                "",
                "#DIV/0!",
                "#BOGUS",
                "2024-02-30",
                "x",
            ]
        )
    )
    body = f"<is><t>{value}</t></is>" if kind == ' t="inlineStr"' else f"<v>{value}</v>"
    if draw(st.integers(0, 5)) == 0:
        body = '<f t="shared" ref="A1:XFD1048576" si="0">A1+1</f>' + body
    prefix = draw(st.sampled_from(["", "", "", "x:"]))
    if draw(st.integers(0, 6)) == 0:
        return f"<{prefix}c{ref}{kind}{style}/>"
    return f"<{prefix}c{ref}{kind}{style}>{body}</{prefix}c>"


@st.composite
def row_xml(draw: st.DrawFn) -> str:
    ref = ""
    if draw(st.integers(0, 3)):
        q = draw(_QUOTES)
        ref = f"{draw(_SPACE)}r{draw(_EQUALS)}{q}{draw(_REF_DIGITS)}{q}"
    cells = "".join(draw(st.lists(cell_xml(), max_size=4)))
    if draw(st.integers(0, 8)) == 0:  # many cells without a reference
        cells += "<c><v>1</v></c>" * draw(st.sampled_from([100, 17_000]))
    return f"<row{ref}>{cells}</row>"


@st.composite
def shared_items(draw: st.DrawFn) -> str:
    """Items added to the shared strings table."""
    items = []
    for _ in range(draw(st.integers(0, 4))):
        items.append(
            draw(
                st.sampled_from(
                    [
                        "<si/>",
                        "<si></si>",
                        "<si><t>plain</t></si>",
                        "<si><r><t>rich</t></r><r><t>text</t></r></si>",
                        "<si><rPh><t>phonetic</t></rPh></si>",
                        "<si><t>&amp;&lt;&#x41;&#1114111;</t></si>",
                        "<si><t>&bogus;</t></si>",
                        "<si><t>" + "y" * (2 << 20) + "</t></si>",
                    ]
                )
            )
        )
    return "".join(items)


_DOCTYPE = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2'
    ' "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
)


def _writable(value: Any) -> Any:
    """A value as xlsxwriter takes it: no NaN or infinity, no Decimal."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)
    return value


@st.composite
def xlsx_bytes(draw: st.DrawFn, kind: str) -> bytes:
    """A workbook of `kind`'s columns, then broken in its XML and its zip."""
    content = xlsx([[_writable(v) for v in row] for row in _rows(draw, kind, CELL)])
    source = zipfile.ZipFile(io.BytesIO(content))
    members = {info.filename: source.read(info) for info in source.infolist()}
    sheet = "xl/worksheets/sheet1.xml"
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 1, 2, 3]))):
        edit = draw(
            st.sampled_from(
                ["rows", "strings", "doctype", "dimension", "truncate", "bytes", "member"]
            )
        )
        if edit == "rows":
            extra = "".join(draw(st.lists(row_xml(), min_size=1, max_size=3))).encode()
            members[sheet] = members[sheet].replace(b"</sheetData>", extra + b"</sheetData>")
        elif edit == "strings":
            strings = members.get("xl/sharedStrings.xml", b"<sst></sst>")
            first = max(strings.find(b"<si>"), strings.find(b">", strings.find(b"<sst")) + 1)
            where = draw(st.sampled_from([first, strings.rfind(b"</sst>")]))
            members["xl/sharedStrings.xml"] = (
                strings[:where] + draw(shared_items()).encode() + strings[where:]
            )
        elif edit == "doctype":
            name = draw(st.sampled_from([sheet, "xl/sharedStrings.xml", "xl/workbook.xml"]))
            body = members.get(name, b"")
            members[name] = _DOCTYPE.encode() + body.split(b"?>", 1)[-1]
        elif edit == "dimension":
            members[sheet] = members[sheet].replace(
                b"<sheetData>", b'<dimension ref="A1:XFD1048576"/><sheetData>', 1
            )
        elif edit == "truncate":
            name = draw(st.sampled_from(sorted(members)))
            members[name] = members[name][: draw(st.integers(0, len(members[name])))]
        elif edit == "bytes":
            name = draw(st.sampled_from(sorted(members)))
            data = bytearray(members[name])
            for _ in range(draw(st.integers(1, 8))):
                if data:
                    at = draw(st.integers(0, len(data) - 1))
                    data[at : at + 1] = draw(
                        st.sampled_from([b"\x00", b"\xff", b"<", b"&", b'"', b"\xc3", b""])
                    )
            members[name] = bytes(data)
        else:
            members = _edit_members(draw, members)
    return _zip_bytes(draw, members)


def _edit_members(draw: st.DrawFn, members: dict[str, bytes]) -> dict[str, bytes]:
    how = draw(st.sampled_from(["drop", "rename-sheet", "many", "nested", "case"]))
    members = dict(members)
    if how == "drop":
        members.pop(draw(st.sampled_from(sorted(members))))
    elif how == "rename-sheet":
        rels = "xl/_rels/workbook.xml.rels"
        target = draw(
            st.sampled_from(
                [b"../../../etc/passwd", b"/xl/none.xml", b"worksheets/sheet9.xml", b""]
            )
        )
        members[rels] = members.get(rels, b"").replace(b"worksheets/sheet1.xml", target)
    elif how == "many":
        for i in range(draw(st.sampled_from([50, 2000]))):
            members[f"xl/media/{i}.bin"] = b""
    elif how == "nested":
        members["xl/worksheets/sheet1.xml"] = _zip_bytes(None, members)
    else:
        members = {
            name.upper() if "shared" in name else name: data for name, data in members.items()
        }
    return members


def _zip_bytes(draw: st.DrawFn | None, members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    method = zipfile.ZIP_DEFLATED
    if draw is not None:
        methods = [zipfile.ZIP_DEFLATED] * 6 + [
            zipfile.ZIP_STORED,
            zipfile.ZIP_BZIP2,
            zipfile.ZIP_LZMA,
        ]
        method = draw(st.sampled_from(methods))
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    content = out.getvalue()
    if draw is not None and draw(st.integers(0, 4)) == 0:
        content = _corrupt_zip(draw, content)
    return content


def _corrupt_zip(draw: st.DrawFn, content: bytes) -> bytes:
    """Lie in the zip's own structures: a member's sizes, the directory's count, or cut it."""
    data = bytearray(content)
    how = draw(st.sampled_from(["local-size", "directory-count", "cut", "comment"]))
    if how == "local-size" and data[:4] == b"PK\x03\x04":
        data[18:26] = struct.pack("<II", draw(st.sampled_from([0, 1, 0xFFFFFFFF])), 0xFFFFFFFF)
    elif how == "directory-count":
        end = data.rfind(b"PK\x05\x06")
        if end >= 0:
            data[end + 8 : end + 12] = struct.pack("<HH", 0xFFFF, 0xFFFF)
    elif how == "cut":
        del data[draw(st.integers(4, max(4, len(data) - 1))) :]
    else:
        end = data.rfind(b"PK\x05\x06")
        if end >= 0:
            data[end + 20 : end + 22] = struct.pack("<H", 0xFFFF)
    return bytes(data)


@st.composite
def workbooks(draw: st.DrawFn) -> Upload:
    kind = draw(KINDS)
    params = (
        {"sheet": draw(st.sampled_from(["Sheet1", "Nope", ""]))}
        if draw(st.integers(0, 5)) == 0
        else {}
    )
    return Upload(kind, draw(xlsx_bytes(kind)), "fuzz.xlsx", {k: v for k, v in params.items() if v})


# --- Parquet -----------------------------------------------------------------------------


def _arrow_column(draw: st.DrawFn, name: str, rows: int) -> Any:
    import pyarrow as pa

    kind = draw(
        st.sampled_from(
            [
                "int64", "int8", "uint64", "float64", "decimal", "decimal-big", "string",
                "large_string", "dictionary", "binary", "date32", "date64", "timestamp",
                "timestamp-tz", "bool", "null", "list", "struct", "time", "duration",
            ]
        )
    )  # fmt: skip
    ints = draw(
        st.lists(st.integers(-(2**63), 2**63 - 1) | st.none(), min_size=rows, max_size=rows)
    )
    if kind == "int64":
        return pa.array(ints, pa.int64())
    if kind == "int8":
        return pa.array([None if i is None else i % 128 for i in ints], pa.int8())
    if kind == "uint64":
        return pa.array([None if i is None else i % 2**64 for i in ints], pa.uint64())
    if kind == "float64":
        return pa.array(
            draw(st.lists(st.floats() | st.none(), min_size=rows, max_size=rows)), pa.float64()
        )
    if kind in ("decimal", "decimal-big"):
        precision, scale = (10, 4) if kind == "decimal" else (38, 0)
        values = [
            None
            if i is None
            else decimal.Decimal(i % 10**6) / 10**scale
            if scale
            else decimal.Decimal(i) * 10**18
            for i in ints
        ]
        return pa.array(values, pa.decimal128(precision, scale))
    texts = draw(st.lists(HOSTILE_TEXT | st.none(), min_size=rows, max_size=rows))
    if kind == "string":
        return pa.array(texts, pa.string())
    if kind == "large_string":
        return pa.array(texts, pa.large_string())
    if kind == "dictionary":
        return pa.array(texts, pa.string()).dictionary_encode()
    if kind == "binary":
        return pa.array(
            [None if t is None else t.encode("utf-8", "surrogatepass") for t in texts], pa.binary()
        )
    days = [None if i is None else i % 3_000_000 - 719_162 for i in ints]
    if kind == "date32":
        return pa.array(days, pa.date32())
    if kind == "date64":
        return pa.array([None if d is None else d * 86_400_000 for d in days], pa.date64())
    if kind in ("timestamp", "timestamp-tz"):
        micros = [None if i is None else i // 1000 for i in ints]
        return pa.array(
            micros, pa.timestamp("us", tz="America/Sao_Paulo" if kind.endswith("tz") else None)
        )
    if kind == "bool":
        return pa.array([None if i is None else i % 2 == 0 for i in ints], pa.bool_())
    if kind == "null":
        return pa.nulls(rows)
    if kind == "list":
        return pa.array([None if i is None else [i, i] for i in ints], pa.list_(pa.int64()))
    if kind == "struct":
        return pa.array(
            [None if i is None else {"a": i} for i in ints], pa.struct([("a", pa.int64())])
        )
    if kind == "time":
        return pa.array([None if i is None else i % 86_400 for i in ints], pa.time32("s"))
    return pa.array(ints, pa.duration("s"))


@st.composite
def parquet_bytes(draw: st.DrawFn, kind: str) -> bytes:
    """A Parquet file of `kind`'s columns (and others) in drawn types and layouts, then
    broken in its footer, its pages or its magic."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = draw(st.integers(0, 30))
    names = list(HEADERS[kind])
    if draw(st.booleans()):
        names.append(draw(st.sampled_from(["extra", "ID", " id", "name.with.dots", ""])))
    if draw(st.integers(0, 5)) == 0:
        names = names[: draw(st.integers(0, len(names)))]
    good = _good_rows(kind, rows)
    columns = {}
    for i, name in enumerate(names):
        if i < 4 and draw(st.integers(0, 2)):  # mostly the right values, in a drawn type
            values = [row[i] for row in good]
            columns[name] = pa.array(values)
        else:
            columns[name] = _arrow_column(draw, name, rows)
    table = pa.table(columns) if columns else pa.table({})
    out = io.BytesIO()
    pq.write_table(
        table,
        out,
        row_group_size=draw(st.sampled_from([None, 1, 7])),
        compression=draw(st.sampled_from(["snappy", "gzip", "zstd", "none", "brotli", "lz4"])),
        use_dictionary=draw(st.booleans()),
        data_page_size=draw(st.sampled_from([None, 64])),
        write_statistics=draw(st.booleans()),
        version=draw(st.sampled_from(["1.0", "2.6"])),
    )
    data = bytearray(out.getvalue())
    for _ in range(draw(st.integers(0, 2))):
        how = draw(st.sampled_from(["footer", "footer-length", "page", "cut", "magic"]))
        if how == "footer" and len(data) > 12:
            (length,) = struct.unpack("<I", data[-8:-4])
            start = min(max(4, len(data) - 8 - length), len(data) - 9)
            at = draw(st.integers(start, len(data) - 9))
            data[at] = draw(st.integers(0, 255))
        elif how == "footer-length" and len(data) > 8:
            data[-8:-4] = struct.pack(
                "<I", draw(st.sampled_from([0, 1, 2**31 - 1, 2**32 - 1, len(data)]))
            )
        elif how == "page" and len(data) > 16:
            at = draw(st.integers(4, len(data) // 2))
            data[at] = draw(st.integers(0, 255))
        elif how == "cut":
            del data[draw(st.integers(4, max(4, len(data) - 1))) :]
        else:
            data[-4:] = draw(st.sampled_from([b"PAR1", b"PARE", b"\x00\x00\x00\x00"]))
    return bytes(data)


@st.composite
def parquet_files(draw: st.DrawFn) -> Upload:
    kind = draw(KINDS)
    return Upload(kind, draw(parquet_bytes(kind)), "fuzz.parquet", {})


# --- CSV ---------------------------------------------------------------------------------


@st.composite
def csv_files(draw: st.DrawFn) -> Upload:
    """A CSV of `kind`'s columns in a drawn dialect and encoding, with hostile fields."""
    kind = draw(KINDS)
    delimiter = draw(st.sampled_from([",", ";", "|", "\t"]))
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    quote_all = draw(st.booleans())

    def field(value: Any) -> str:
        text = "" if value is None else str(value)
        if quote_all or any(c in text for c in (delimiter, '"', "\n", "\r")):
            return '"' + text.replace('"', '""') + '"'
        return text

    rows = _rows(draw, kind, CELL)
    lines = [delimiter.join(field(v) for v in row) for row in rows]
    if draw(st.integers(0, 5)) == 0:  # an unterminated quote, a lone quote, a blank line
        lines.insert(
            draw(st.integers(1, len(lines))),
            draw(st.sampled_from(['"open', '"', "", delimiter * 3])),
        )
    text = end.join(lines) + draw(st.sampled_from([end, ""]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1"]))
    content = text.encode(encoding, errors="replace")
    params: dict[str, str] = {}
    if draw(st.booleans()):
        params["delimiter"] = {"\t": "tab"}.get(delimiter, delimiter)
    if draw(st.integers(0, 3)) == 0:
        params["encoding"] = draw(
            st.sampled_from(["utf-8", "cp1252", "utf-16-le", "utf-8", "bogus"])
        )
    if draw(st.integers(0, 4)) == 0:
        params["decimal"] = draw(st.sampled_from([",", "."]))
    if draw(st.integers(0, 4)) == 0:
        params["date_format"] = draw(
            st.sampled_from(["%d/%m/%Y", "%m/%d/%Y", "%Y-%m-%d", "%d.%m.%Y", "DD/MM/YYYY"])
        )
    return Upload(kind, content, "fuzz.csv", params)


# --- multipart ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RawRequest:
    """A request body and its Content-Type, as a client that gets multipart wrong sends it."""

    kind: str
    content_type: str | None
    body: bytes


_BOUNDARY = st.text(
    alphabet=st.sampled_from([*"abcXYZ019'()+_,-./:=? ", '"', ";", "é"]),
    min_size=0,
    max_size=300,
)


@st.composite
def multipart_requests(draw: st.DrawFn) -> RawRequest:
    """A multipart upload as a browser sends it, then broken in 0-3 places: its
    boundary (length, characters, quoting), the Content-Type, line ends, the part's
    headers, repeated parts, the preamble and the closing boundary, a cut."""
    kind = draw(KINDS)
    boundary = draw(st.text(alphabet="abcdefXYZ0123456789-", min_size=1, max_size=40))
    content_type = f"multipart/form-data; boundary={boundary}"
    nl = "\r\n"
    disposition = 'form-data; name="file"; filename="up.csv"'
    part_type = "Content-Type: text/csv" + nl
    parts = 1
    preamble, ending = "", f"{nl}--{boundary}--{nl}"
    cut: int | None = None
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):
        how = draw(
            st.sampled_from(
                ["boundary", "content-type", "lf", "disposition", "headers", "parts", "ends", "cut"]
            )
        )
        if how == "boundary":
            boundary = draw(
                st.one_of(_BOUNDARY, st.sampled_from(["x" * 70, "x" * 257, "x" * 5000]))
            )
            shown = f'"{boundary}"' if draw(st.booleans()) else boundary
            content_type = f"multipart/form-data; boundary={shown}"
            ending = f"{nl}--{boundary}--{nl}"
        elif how == "content-type":
            content_type = draw(
                st.sampled_from(
                    [
                        f"multipart/form-data;boundary={boundary}; charset=utf-8",
                        "multipart/form-data",
                        f"multipart/mixed; boundary={boundary}",
                        f"text/csv; boundary={boundary}",
                        "",
                    ]
                )
            )
        elif how == "lf":
            nl = "\n"
            ending = f"{nl}--{boundary}--{nl}"
        elif how == "disposition":
            disposition = draw(
                st.sampled_from(
                    [
                        'form-data; name="file"',
                        'form-data; name="other"; filename="up.csv"',
                        "form-data; name=file; filename=up.csv",
                        "form-data; name=\"file\"; filename*=UTF-8''%C3%A9.csv",
                        'form-data; name="file"; filename="' + "x" * 5000 + '"',
                        "",
                    ]
                )
            )
        elif how == "headers":
            part_type = draw(
                st.sampled_from(["", "X-" + "h" * 9000 + ": v" + nl, "Bad header" + nl])
            )
        elif how == "parts":
            parts = 2
        elif how == "ends":
            preamble = draw(st.sampled_from(["", "preamble" + nl]))
            ending = draw(st.sampled_from([f"{nl}--{boundary}--", "", f"{nl}--{boundary}{nl}"]))
        else:
            cut = draw(st.integers(0, 400))
    csv_body = (",".join(HEADERS[kind]) + nl + ",".join(map(str, _good_rows(kind, 1)[0]))).encode()
    head = f"--{boundary}{nl}" + (f"Content-Disposition: {disposition}{nl}" if disposition else "")
    part = (head + part_type + nl).encode("utf-8", "surrogatepass") + csv_body
    body = preamble.encode() + nl.encode().join([part] * parts) + ending.encode()
    if cut is not None:
        body = body[:cut]
    return RawRequest(kind, content_type or None, body)
