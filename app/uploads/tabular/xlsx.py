"""A workbook's sheet (the first, or `?sheet=`) as CSV, read by calamine.

Formulas come as their cached values. A date cell becomes `YYYY-MM-DD`; a whole-number
numeric cell (`21.0`) an integer; another number its 15 significant digits (as Excel
shows it); an empty row a blank line, so that line numbers stay sheet rows.

calamine holds the sheet in memory as one dense rectangle of cells, from its first cell
to its last, each cell with its own copy of its text. Before it opens anything, the zip
is unpacked once as a stream and measured (`measure`), the way calamine will read it:

- what all members unpack to (XLSX_MAX_UNPACKED_BYTES; members may lie about it);
- every cell and row reference, normalised as calamine reads it (any case, any zero
  padding, either quote, spaces around `=`), against the format's bounds (XFD1048576)
  and, as a rectangle from A1, against XLSX_MAX_CELLS. Rows and cells without a
  reference take the place after the previous one, so each one counts as one more
  row and column;
- the text the cells expand to: a shared string is stored once and copied into every
  cell that names it, so 20 MB named by 100 cells is 2 GB (MAX_UPLOAD_BYTES, as a
  CSV's text).

Every member is measured, not only `xl/worksheets/`: a sheet is wherever the workbook's
relationships put it. A ZIP that calamine could read as `.ods` or `.xlsb` instead is
refused: their rows and columns repeat by count, unmeasured here.
"""

from __future__ import annotations

import csv
import datetime
import io
import re
import zipfile
import zlib
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from app.uploads.tabular import Refused, Table, TabularLimits, too_large, undecodable

BUFFER_BYTES = 1 << 20
READ_BYTES = 1 << 20

MAX_ROW = 1_048_576  # the format's last row
MAX_COLUMN = 16_384  # and last column, XFD
LAST_CELL = "XFD1048576"

# The parts by which calamine would read a ZIP as another format than .xlsx when its
# .xlsx parts do not read (it tries each in turn): an OpenDocument spreadsheet's rows and
# columns repeat by count (1.7 KB of .ods asked for 3.8 GB), and an .xlsb's sheets are
# binary.
OTHER_SPREADSHEETS = frozenset({"content.xml", "xl/workbook.bin"})
NOT_XLSX = (
    "The file is a ZIP but not an .xlsx workbook (an OpenDocument .ods or a binary .xlsb"
    " is not read): save it as .xlsx or CSV."
)

# --- references ------------------------------------------------------------------------
#
# A chunk of XML is first made single-spaced in its whitespace (tab, CR and LF become
# spaces: quick-xml, calamine's parser, takes any of them between attributes). What
# every writer writes is then ` r="B12"`: upper case, no leading zero, double quotes.
# Those are measured by C-speed searches; a chunk holding any other spelling of an `r`
# attribute is read attribute by attribute (`_SpelledOut`).

_WHITESPACE = bytes.maketrans(b"\t\n\r", b"   ")
_PLAIN_REF = re.compile(rb' r="([A-Z]{0,3})([1-9][0-9]{0,6})"')
_PLAIN = b' r="'
_ODD_PLAIN = re.compile(rb' r="(?![A-Z]{0,3}[1-9][0-9]{0,6}")')
_ODD_SPACING = (b" r ", b" r= ", b" r='")
_ANY_REF = re.compile(rb' r *= *(?:"([^"]*)"|\'([^\']*)\')')
_REF_PARTS = re.compile(rb"([A-Za-z]*)([0-9]*)")
# Elements with a namespace prefix (`<x:row>`): counted by pattern, not by bytes.count.
_PREFIXED = (b":row", b":c ", b":c>", b":c/")
# Rows and cells that name their place (every writer puts `r` first).
_PLACED = (b'<row r="', b'<c r="', b':row r="', b':c r="')
_ROW_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?row[ >/]")
_CELL_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?c[ >/]")
# Cells of shared strings (`t="s"`), and the string each one names, where plainly written.
_SHARED = b' t="s"'
_ODD_TYPE = (b" t ", b" t= ", b" t='")
_ANY_SHARED = re.compile(rb""" t *= *(["'])s\1""")
_SHARED_INDEX = re.compile(rb'<c [^>]* t="s"[^>]*><v>([0-9]+)</v>')
# The tags that say where a shared string item starts and ends, and whether it has text.
_STRING_TAGS = re.compile(
    rb"<(?:(?:[A-Za-z_][\w.-]*:)?(si|t|r|rPh)[ >/]|/(?:[A-Za-z_][\w.-]*:)?(si|rPh)>)"
)
# How many times a search for a larger reference may succeed in one chunk before the
# chunk's references are all read instead (a file written in descending order).
RAISES = 64


def column_number(letters: bytes) -> int:
    """`A` is 1, `Z` 26, `AA` 27 … `XFD` 16,384 (any case)."""
    number = 0
    for letter in letters.upper():
        number = number * 26 + letter - 64
    return number


def _column_letters(number: int) -> str:
    letters = ""
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _larger(text: str, digit: Callable[[int], str], first: str, last: str, most: int) -> list[str]:
    """Alternatives of a regular expression for the strings of at most `most` digits
    (in `first`..`last`, no leading `first` for numbers) that stand for a larger number
    than `text`: longer ones, or as long with a larger digit after a common start."""
    found = []
    if len(text) < most:
        found.append(f"[{digit(1)}-{last}][{first}-{last}]{{{len(text)},{most - 1}}}")
    for i, char in enumerate(text):
        if char != last:
            rest = len(text) - i - 1
            found.append(f"{text[:i]}[{chr(ord(char) + 1)}-{last}][{first}-{last}]{{{rest}}}")
    return found


def _row_pattern(row: int) -> re.Pattern[bytes] | None:
    """A plain reference to a row after `row`."""
    digits = str(row) if row else ""
    alternatives = _larger(digits, str, "0", "9", 7)
    if not alternatives:
        return None
    return re.compile(b' r="[A-Z]{0,3}(?:' + "|".join(alternatives).encode() + b')"')


def _column_pattern(column: int) -> re.Pattern[bytes] | None:
    """A plain reference to a cell right of `column`."""
    alternatives = _larger(_column_letters(column), lambda _: "A", "A", "Z", 3)
    if not alternatives:
        return None
    return re.compile(b' r="(?:' + "|".join(alternatives).encode() + b")[1-9]")


@dataclass
class _Extent:
    """What one member's references and elements say of the rectangle calamine makes."""

    rows: int = 0  # the last row a reference names
    columns: int = 0  # and the last column
    elements: int = 0  # rows and cells
    placed: int = 0  # rows and cells that name their place (an `r` attribute)
    shared_cells: int = 0  # cells of type `s`: each names a shared string
    size: int = 0  # bytes unpacked

    def cells(self) -> int:
        """The rectangle from A1 to the last place a row or cell can take."""
        unplaced = max(0, self.elements - self.placed)
        return (self.rows + unplaced) * (self.columns + unplaced)

    def add(self, xml: bytes) -> None:
        """Measure one chunk of whole tags (whitespace already made spaces)."""
        self.size += len(xml)
        if any(xml.find(odd) >= 0 for odd in _PREFIXED):
            self.elements += len(_ROW_TAG.findall(xml)) + len(_CELL_TAG.findall(xml))
        else:
            self.elements += sum(
                xml.count(tag) for tag in (b"<row ", b"<row>", b"<row/", b"<c ", b"<c>", b"<c/")
            )
        if any(xml.find(odd) >= 0 for odd in _ODD_TYPE):
            self.shared_cells += len(_ANY_SHARED.findall(xml))
        else:
            self.shared_cells += xml.count(_SHARED)
        if _ODD_PLAIN.search(xml) or any(xml.find(odd) >= 0 for odd in _ODD_SPACING):
            self._spelled_out(xml)
        else:
            self.placed += sum(xml.count(tag) for tag in _PLACED)
            self._plain(xml)

    def _plain(self, xml: bytes) -> None:
        """The largest row and column of plainly written references. Rows grow through a
        sheet: the chunk's last reference is its largest row, and a search for a larger
        one usually finds none; when it does, the search goes on past it."""
        last = xml.rfind(_PLAIN)
        if last >= 0 and (found := _PLAIN_REF.match(xml, last)):
            self._place(found.group(1), found.group(2))
        rows = self._raise(xml, self.rows, _row_pattern, lambda m: int(m.group(2)))
        columns = self._raise(
            xml, self.columns, _column_pattern, lambda m: column_number(m.group(1))
        )
        if rows > self.rows or columns > self.columns:
            self._place(_column_letters(columns).encode(), str(rows).encode())

    @staticmethod
    def _raise(
        xml: bytes,
        value: int,
        pattern: Callable[[int], re.Pattern[bytes] | None],
        of: Callable[[re.Match[bytes]], int],
    ) -> int:
        start = 0
        for _ in range(RAISES):
            larger = pattern(value)
            found = larger.search(xml, start) if larger else None
            if found is None:
                return value
            plain = _PLAIN_REF.match(xml, found.start())
            assert plain is not None  # a chunk with other spellings is not read here
            value = of(plain)
            start = found.start() + 1
        return max(value, *(of(m) for m in _PLAIN_REF.finditer(xml)))

    def _spelled_out(self, xml: bytes) -> None:
        for found in _ANY_REF.finditer(xml):
            self.placed += 1
            value = found.group(1) if found.group(1) is not None else found.group(2)
            parts = _REF_PARTS.fullmatch(value)
            if parts is None:
                continue  # not letters then digits: calamine refuses the sheet itself
            self._place(parts.group(1), parts.group(2), text=value)

    def _place(self, letters: bytes, digits: bytes, *, text: bytes | None = None) -> None:
        row = int(digits) if digits else 0
        column = column_number(letters) if letters else 0
        if not 1 <= row <= MAX_ROW or column > MAX_COLUMN or len(letters) > 3:
            shown = (text or letters + digits).decode("ascii", "replace")[:40]
            raise undecodable(
                f"The workbook names a cell outside a sheet's bounds (A1 to {LAST_CELL}):"
                f" {shown!r}.",
                {"reference": shown},
            )
        self.rows = max(self.rows, row)
        self.columns = max(self.columns, column)


@dataclass
class _Strings:
    """The shared strings' sizes, as upper bounds: each item's bytes of XML, markup and
    entities included (its text is never longer), in calamine's order. calamine keeps
    an item only if it holds a text run (`<t>` outside phonetic runs) or rich text
    (`<r>`): one without either takes no index, and neither does one here."""

    sizes: array[int] = field(default_factory=lambda: array("q"))
    offset: int = 0  # of the chunk being read, in the member
    start: int = -1  # of the open item, -1 when none is open
    text: bool = False  # the open item holds a text run or rich text
    phonetic: bool = False  # inside a phonetic run (`<rPh>`), whose text is not kept

    def add(self, xml: bytes) -> None:
        for found in _STRING_TAGS.finditer(xml):
            opened, closed = found.group(1), found.group(2)
            empty = opened is not None and xml[xml.find(b">", found.end() - 1) - 1] == 47
            if opened == b"si":
                self.start, self.text, self.phonetic = self.offset + found.start(), False, False
                if empty:  # `<si/>`: an item without text
                    self.start = -1
            elif closed == b"si":
                if self.start >= 0 and self.text:
                    self.sizes.append(self.offset + found.end() - self.start)
                self.start = -1
            elif opened == b"rPh":
                self.phonetic = not empty
            elif closed == b"rPh":
                self.phonetic = False
            elif opened == b"r" or (opened == b"t" and not self.phonetic):
                self.text = True
        self.offset += len(xml)

    @property
    def largest(self) -> int:
        return max(self.sizes, default=0)

    def named(self, index: int) -> int:
        return self.sizes[index] if index < len(self.sizes) else 0


def _is_shared_strings(name: str) -> bool:
    return name.replace("\\", "/").lower().rsplit("/", 1)[-1] == "sharedstrings.xml"


def _chunks(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, unpacked: list[int], limits: TabularLimits
) -> Iterator[bytes]:
    """A member's XML as chunks of whole tags with single-spaced whitespace, counting
    every byte unpacked against the limit."""
    tail = b""
    with archive.open(info) as member:
        while chunk := member.read(READ_BYTES):
            unpacked[0] += len(chunk)
            if unpacked[0] > limits.max_unpacked_bytes:
                raise _unpacked_too_large(limits)
            data = tail + chunk
            cut = data.rfind(b"<")
            whole, tail = (data[:cut], data[cut:]) if cut > 0 else (data, b"")
            yield whole.translate(_WHITESPACE)
    if tail:
        yield tail.translate(_WHITESPACE)


def _unpacked_too_large(limits: TabularLimits) -> Refused:
    return too_large(
        limits.max_unpacked_bytes,
        what="The workbook unpacks to more than",
        setting="XLSX_MAX_UNPACKED_BYTES",
    )


def measure(spool: IO[bytes], limits: TabularLimits) -> None:
    """Refuse a workbook that calamine would read as another format, or that would
    unpack, spread or expand past the limits (the module's docstring says how)."""
    try:
        archive = zipfile.ZipFile(spool)
        members = archive.infolist()
        if OTHER_SPREADSHEETS & {info.filename for info in members}:
            raise undecodable(NOT_XLSX)
        if sum(info.file_size for info in members) > limits.max_unpacked_bytes:
            raise _unpacked_too_large(limits)
        unpacked = [0]
        strings = _Strings()
        extents: dict[str, _Extent] = {}
        for info in members:
            extent = extents[info.filename] = _Extent()
            shared = _is_shared_strings(info.filename)
            for xml in _chunks(archive, info, unpacked, limits):
                extent.add(xml)
                if shared:
                    strings.add(xml)
            if extent.cells() > limits.max_cells:
                raise too_large(
                    limits.max_cells,
                    what="A sheet of the workbook spans more cells than",
                    setting="XLSX_MAX_CELLS",
                    unit="cells",
                )
        _measure_text(archive, members, extents, strings, limits)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
        raise undecodable(f"The file starts as a workbook (a ZIP) but is not one: {exc}.") from None
    finally:
        spool.seek(0)


def _measure_text(
    archive: zipfile.ZipFile,
    members: list[zipfile.ZipInfo],
    extents: dict[str, _Extent],
    strings: _Strings,
    limits: TabularLimits,
) -> None:
    """Refuse a workbook whose cells' text comes to more than a CSV may hold: each
    member's own bytes (inline strings, numbers) plus the shared strings its cells name.
    First as if every such cell named the largest string; only past the limit are the
    cells' own indexes read (a second pass over those members)."""
    bound = sum(e.size + e.shared_cells * strings.largest for e in extents.values())
    if bound <= limits.max_text_bytes:
        return
    text = 0
    for info in members:
        extent = extents[info.filename]
        text += extent.size
        if not extent.shared_cells:
            continue
        named = 0
        for xml in _chunks(archive, info, [0], limits):
            for found in _SHARED_INDEX.finditer(xml):
                named += 1
                text += strings.named(int(found.group(1)))
        text += max(0, extent.shared_cells - named) * strings.largest
        if text > limits.max_text_bytes:
            raise too_large(
                limits.max_text_bytes,
                what="The workbook's cells, with the shared strings they name, come to more than",
                setting="MAX_UPLOAD_BYTES",
            )


def open_sheet(spool: IO[bytes], sheet: str | None, limits: TabularLimits) -> Table:
    """The workbook's sheet (the first, or the one named) as CSV buffers."""
    measure(spool, limits)
    import python_calamine  # lazily: only workbooks need it

    try:
        book = python_calamine.CalamineWorkbook.from_filelike(spool)
        names = book.sheet_names
        if sheet is None:
            if not names:
                raise undecodable("The workbook has no sheet.")
            found = book.get_sheet_by_index(0)
        elif sheet in names:
            found = book.get_sheet_by_name(sheet)
        else:
            raise undecodable(f"The workbook has no sheet {sheet!r}.", {"sheets": list(names)})
    except (Refused, MemoryError):
        raise
    except Exception as exc:  # calamine's errors are plain exceptions of several kinds
        raise undecodable(f"The workbook cannot be read: {exc}.") from None
    rows = iter(found.iter_rows())
    skipped = 0
    for row in rows:  # the header is the first row with a value; rows above it count
        cells = [_cell(v) for v in row]
        if any(cells):
            return Table(_sheet_rows(cells, rows, limits.max_text_bytes), line_offset=skipped)
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


def _sheet_rows(header: list[str], rows: Iterator[Any], max_text_bytes: int) -> Iterator[bytes]:
    out = io.StringIO()
    # CRLF ends each record, so that the writer quotes a cell holding a lone CR too (it
    # quotes only its terminator's characters): a bare CR would end the record there.
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    written = 0
    for row in rows:
        cells = [_cell(v) for v in row]
        if any(cells):
            writer.writerow(cells)
        else:
            out.write("\r\n")  # a blank line: not a row, but its number is kept
        if out.tell() >= BUFFER_BYTES:
            chunk = out.getvalue().encode()
            written += len(chunk)
            if written > max_text_bytes:
                raise too_large(
                    max_text_bytes,
                    what="The sheet's rows, as text, come to more than",
                    setting="MAX_UPLOAD_BYTES",
                )
            yield chunk
            out.seek(0)
            out.truncate()
    if out.tell():
        yield out.getvalue().encode()
