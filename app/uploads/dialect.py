"""The dialect of an uploaded file: its format (CSV, workbook or Parquet, by its magic
bytes), its text encoding, its delimiter, its decimal separator and its date format.

What is asked (`UploadOptions`, from the upload's query) wins; what is not asked is detected:
the format from the first bytes, the encoding from a BOM, then from whether the first
`SAMPLE_BYTES` are UTF-8, then by charset-normalizer among Windows-1252 and Latin-1
(`sources.py`); the delimiter from the header line (`parsing.parse_header`). A date format
is never guessed. Content type and filename play no part.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from app.uploads.models import OnConflict

DELIMITERS = (",", ";", "\t", "|")
# Bytes read before the encoding is judged (the whole file when it is smaller).
SAMPLE_BYTES = 16 * 1024


class FileFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    PARQUET = "parquet"


def sniff_format(first: bytes) -> FileFormat:
    """The format by the first bytes: a ZIP container (`PK\\x03\\x04`) is a workbook, `PAR1`
    is Parquet, anything else is read as delimited text."""
    if first.startswith(b"PK\x03\x04"):
        return FileFormat.XLSX
    if first.startswith(b"PAR1"):
        return FileFormat.PARQUET
    return FileFormat.CSV


def codec_name(name: str) -> str:
    """The Python codec name of a text encoding (`latin-1` → `iso8859-1`); ValueError
    for an unknown name or a codec that is not a text encoding (`rot13`, `zlib`)."""
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        raise ValueError(f"unknown encoding {name!r}") from None
    if not getattr(info, "_is_text_encoding", True):
        raise ValueError(f"{name!r} is not a text encoding")
    return info.name


@dataclass(frozen=True)
class DateFormat:
    """An explicit date format: day, month and 4-digit year in some order, with one
    separator (`%d/%m/%Y`, `%m-%d-%Y`, `%Y.%m.%d` …), and optionally a local time after
    a space (`%m/%d/%Y %H:%M`, `… %H:%M:%S`: a time of the shop's zone, so the date is
    the one written). Only these are understood: the SQL that reads them is built from
    this value, never from the text received."""

    order: tuple[str, str, str]  # a permutation of "d", "m", "Y"
    separator: str  # one of SEPARATORS
    time: str = ""  # "", "%H:%M" or "%H:%M:%S"

    def __str__(self) -> str:
        date = self.separator.join(f"%{part}" for part in self.order)
        return f"{date} {self.time}" if self.time else date


SEPARATORS = ("/", "-", ".", " ")
_DATE_FORMAT = re.compile(r"%([dmY])([/\-. ])%([dmY])\2%([dmY])(?: (%H:%M(?::%S)?))?")


def parse_date_format(text: str) -> DateFormat:
    matched = _DATE_FORMAT.fullmatch(text)
    if (
        matched is None
        or sorted(matched.group(1, 3, 4)) != ["Y", "d", "m"]
        or (matched.group(5) and matched.group(2) == " ")
    ):
        raise ValueError(
            "date_format must be %d, %m and %Y in some order with one separator"
            " (/ - . or space), such as %d/%m/%Y, optionally followed by a space and"
            " %H:%M or %H:%M:%S (then the separator is not a space)"
        )
    d1, sep, d2, d3, time = matched.groups()
    return DateFormat(order=(d1, d2, d3), separator=sep, time=time or "")


@dataclass(frozen=True)
class UploadOptions:
    """What the upload's query asked: the conflict policy and any dialect it fixes."""

    on_conflict: OnConflict = OnConflict.REJECT
    delimiter: str | None = None
    decimal: str | None = None
    encoding: str | None = None  # a Python codec name (codec_name)
    date_format: DateFormat | None = None
    sheet: str | None = None
    # Past this share of rejected rows the upload fails whole (`too_many_rejects`).
    max_rejected_share: float = 1.0
    # (column, the file's name for it) pairs: `?columns=id=LineNo,created_date=When`.
    renamed: tuple[tuple[str, str], ...] = ()
    # Products: the date a row's price takes effect from, when it has no effective_from
    # (else the upload's business date).
    effective_from: date | None = None
    # Whether ids may be text (`?ids=text`).
    text_ids: bool = False


@dataclass(frozen=True)
class Dialect:
    """How the file's rows are read. `decimal` is `,` when a price may be written with a
    decimal comma (or point), `.` when only a point is one. Workbooks and Parquet are read
    into delimited text first: their delimiter and encoding are None."""

    format: FileFormat = FileFormat.CSV
    encoding: str | None = "utf-8"
    delimiter: str | None = ","
    decimal: str = "."
    date_format: DateFormat | None = None
    # Where a date-time with an offset is read as a date (BUSINESS_TIMEZONE: a validated
    # IANA name, written into the checks' SQL as a literal).
    timezone: str = "America/Sao_Paulo"

    @property
    def numbered_by_records(self) -> bool:
        """Whether rows are numbered by records (a sheet's rows, Parquet's), not by the
        lines of the text they were read into: a cell's line breaks are not rows."""
        return self.format is not FileFormat.CSV

    @property
    def staged_delimiter(self) -> str:
        """The delimiter of the text that reaches staging."""
        return self.delimiter or ","

    def report(
        self, *, decimal_seen: bool | None = None, timestamps: int | None = None
    ) -> dict[str, Any]:
        """The report's `dialect`: `decimal` is `,` when prices were read with a decimal
        comma and one was seen (or `?decimal=,` asked it); `timestamps`, how many dates
        were date-times read as their date in `timezone` (both only for orders)."""
        decimal = self.decimal if decimal_seen is None else ("," if decimal_seen else ".")
        out: dict[str, Any] = {
            "format": self.format.value,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "decimal": decimal,
            "date_format": str(self.date_format) if self.date_format else None,
        }
        if timestamps is not None:
            out["timestamps"] = timestamps
            out["timezone"] = self.timezone
        return out


def decimal_for(options: UploadOptions, delimiter: str) -> str:
    """Prices may use a decimal comma when asked, or when commas do not separate fields."""
    if options.decimal is not None:
        return options.decimal
    return "." if delimiter == "," else ","
