"""The uploaded bytes as UTF-8 delimited text, whatever they came as.

- CSV in UTF-8 (the fast path's file): passed through untouched, only checked for
  control characters (a byte translation per chunk); invalid UTF-8 is found where it is
  read, by COPY or Python's decoder.
- CSV in another encoding (UTF-16, Windows-1252, Latin-1, any Python codec asked):
  decoded incrementally and re-encoded as UTF-8, chunk by chunk (flat memory).
- A workbook (`.xlsx`) or Parquet file needs random access: it is spooled whole to a
  temporary file, then read into comma-separated UTF-8 text by a process of its own
  (`tabular/`), so that a crash of a native reader costs the upload, not the service.

`open_source` judges the format and the encoding on the first bytes (dialect.py).
"""

from __future__ import annotations

import codecs
import re
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from app.uploads import tabular
from app.uploads.dialect import SAMPLE_BYTES, FileFormat, UploadOptions, codec_name, sniff_format
from app.uploads.errors import Undecodable
from app.uploads.rules import RULES
from app.uploads.tabular import process

# C0 controls but tab, LF and CR, and DEL: no text file of rows holds them.
CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
_C1_IN_UTF8 = re.compile(rb"\xc2[\x80-\x9f]")
_CONTROL_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
CONTROLS = (
    "The file holds control characters (NUL or others but tab, CR and LF): it is not text"
    " in {encoding}."
)


async def _nothing_to_close() -> None:
    pass


@dataclass
class TextSource:
    """The file as UTF-8 text: its format and encoding (None for workbooks and Parquet),
    the lines before its header (a sheet's empty rows; -1 for Parquet, whose first row
    is row 1), and warnings for the report. Whoever reads it calls `close()` when the
    upload ends, however it ends: a workbook's or Parquet file's reading process stops
    then, not when the collector finds a generator (one never started is never
    finalized)."""

    chunks: AsyncGenerator[bytes, None]
    format: FileFormat
    encoding: str | None
    line_offset: int = 0
    warnings: list[str] = field(default_factory=list)
    close: Callable[[], Awaitable[None]] = _nothing_to_close


async def open_source(
    stream: AsyncIterator[bytes], options: UploadOptions, limits: tabular.TabularLimits
) -> TextSource:
    """Judge the format and encoding from the first bytes; the file as UTF-8 text."""
    sample, ended = await _sample(stream)
    kind = sniff_format(sample)
    if kind is not FileFormat.CSV:
        return await _tabular(kind, sample, stream, options, limits)
    encoding = options.encoding or detect_encoding(
        sample[:SAMPLE_BYTES], ended=ended and len(sample) <= SAMPLE_BYTES
    )
    if encoding == "utf-8":
        return TextSource(_checked_utf8(sample, stream), kind, encoding)
    return TextSource(_transcoded(sample, stream, encoding), kind, encoding)


async def _sample(stream: AsyncIterator[bytes]) -> tuple[bytes, bool]:
    parts: list[bytes] = []
    size = 0
    async for chunk in stream:
        parts.append(chunk)
        size += len(chunk)
        if size >= SAMPLE_BYTES:
            return b"".join(parts), False
    return b"".join(parts), True


def detect_encoding(sample: bytes, *, ended: bool) -> str:
    """UTF-8 by its BOM or when the sample decodes as UTF-8 (a sequence cut by the
    sample's end allowed), UTF-16 by its BOM; otherwise what charset-normalizer finds
    among Windows-1252 and Latin-1, or Undecodable."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8"
    if sample.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise Undecodable("The file is UTF-32, which is not read: save it as UTF-8 or UTF-16.")
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in sample:
        raise Undecodable(
            "The file contains NUL bytes: it is not text (UTF-16 without a byte order mark"
            " can be read with ?encoding=utf-16-le or utf-16-be)."
        )
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=ended)
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    import charset_normalizer  # lazily: only files that are not UTF-8 need it

    best = charset_normalizer.from_bytes(sample, cp_isolation=["cp1252", "latin_1"]).best()
    if best is None:
        raise Undecodable(
            "The file is not text in UTF-8, UTF-16, Windows-1252 or Latin-1"
            " (say which with ?encoding=)."
        )
    return codec_name(best.encoding)


async def _checked_utf8(sample: bytes, stream: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
    async for chunk in _chain(sample, stream):
        if len(chunk.translate(None, CONTROL_BYTES)) != len(chunk) or (
            b"\xc2" in chunk and _C1_IN_UTF8.search(chunk)
        ):
            raise Undecodable(CONTROLS.format(encoding="utf-8"))
        yield chunk


async def _transcoded(
    sample: bytes, stream: AsyncIterator[bytes], encoding: str
) -> AsyncGenerator[bytes, None]:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        async for chunk in _chain(sample, stream):
            yield _utf8(decoder.decode(chunk), encoding)
        yield _utf8(decoder.decode(b"", final=True), encoding)
    except (UnicodeError, ValueError, TypeError) as exc:  # TypeError: a codec's odd input
        if isinstance(exc, Undecodable):
            raise
        raise Undecodable(f"The file is not valid {encoding}.") from None


def _utf8(text: str, encoding: str) -> bytes:
    if _CONTROL_TEXT.search(text):
        raise Undecodable(CONTROLS.format(encoding=encoding))
    return text.encode("utf-8")


async def _chain(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk


async def _tabular(
    kind: FileFormat,
    sample: bytes,
    stream: AsyncIterator[bytes],
    options: UploadOptions,
    limits: tabular.TabularLimits,
) -> TextSource:
    """Spool the whole file (a workbook's directory and Parquet's footer are at its end),
    then read it as comma-separated UTF-8 text in a process of its own."""
    spool = tempfile.TemporaryFile(prefix="orderlens-tabular-")  # noqa: SIM115 (closed by rows)
    try:
        async for chunk in _chain(sample, stream):
            spool.write(chunk)
        reading = await process.read_file(
            "xlsx" if kind is FileFormat.XLSX else "parquet",
            spool,
            limits,
            sheet=options.sheet,
            required=REQUIRED_COLUMNS,
        )
    except BaseException:
        spool.close()
        raise

    async def close() -> None:
        try:
            await reading.close()
        finally:
            spool.close()

    return TextSource(
        reading.chunks,
        kind,
        None,
        line_offset=reading.line_offset,
        warnings=reading.warnings,
        close=close,
    )


# Columns that must hold one value per row (folded names): a Parquet column of lists
# under one of these names refuses the file; under another name it is left out.
REQUIRED_COLUMNS = frozenset(name for rules in RULES.values() for name in rules.required)
