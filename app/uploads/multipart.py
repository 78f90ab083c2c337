"""Read the `file` part of a multipart upload as a stream of bytes, with the size limit
enforced while reading (also when the client sends no Content-Length)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.requests import ClientDisconnect

from app.uploads.errors import ClientGone, MissingFile, TooLarge

FILE_FIELD = b"file"
# Multipart framing (boundaries, part headers, small form fields) allowed on top of the file.
FRAMING_ALLOWANCE = 64 * 1024


@dataclass
class _Part:
    name: bytes | None = None
    filename: str | None = None
    headers: dict[bytes, bytes] = field(default_factory=dict)


class FilePartReader:
    """Feed it the request body; it yields the bytes of the `file` part, in order."""

    def __init__(self, content_type: str | None, *, max_bytes: int) -> None:
        mime, params = parse_options_header(content_type or "")
        boundary = params.get(b"boundary")
        if mime != b"multipart/form-data" or not boundary:
            raise MissingFile("Send the CSV as multipart/form-data in a field named `file`.")
        self.max_bytes = max_bytes
        self.body_bytes = 0
        self.file_bytes = 0
        self.filename: str | None = None
        self.found = False
        self._part = _Part()
        self._header_name = b""
        self._header_value = b""
        self._in_file = False
        self._out: list[bytes] = []
        with _malformed():  # a boundary over python-multipart's 256 bytes
            self._parser = MultipartParser(
                boundary,
                {
                    "on_part_begin": self._on_part_begin,
                    "on_header_field": self._on_header_field,
                    "on_header_value": self._on_header_value,
                    "on_header_end": self._on_header_end,
                    "on_headers_finished": self._on_headers_finished,
                    "on_part_data": self._on_part_data,
                    "on_part_end": self._on_part_end,
                },
            )

    async def read(self, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The file part's bytes; raises MissingFile, TooLarge or ClientGone."""
        async for chunk in _until_disconnect(body):
            self.body_bytes += len(chunk)
            if self.body_bytes > self.max_bytes + FRAMING_ALLOWANCE:
                raise TooLarge(self.max_bytes)
            self._write(chunk)
            if self.file_bytes > self.max_bytes:
                raise TooLarge(self.max_bytes)
            if self._out:
                out, self._out = self._out, []
                for piece in out:
                    yield piece
        self._write(None)
        if self._parser.state != MultipartState.END:
            # python-multipart takes a body cut short as complete: a Content-Length that
            # lies, a proxy that gave up. Its last part may be any prefix of the file.
            raise _invalid("the body ends before its closing boundary")
        for piece in self._out:
            yield piece
        self._out = []
        if not self.found:
            raise MissingFile("The request has no file part named `file`.")

    def _write(self, chunk: bytes | None) -> None:
        """Feed python-multipart (None: the end)."""
        with _malformed():
            if chunk is None:
                self._parser.finalize()
            else:
                self._parser.write(chunk)

    # python-multipart callbacks --------------------------------------------------------

    def _on_part_begin(self) -> None:
        self._part = _Part()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        self._part.headers[self._header_name.strip().lower()] = self._header_value.strip()
        self._header_name = self._header_value = b""

    def _on_headers_finished(self) -> None:
        _, params = parse_options_header(self._part.headers.get(b"content-disposition", b""))
        self._part.name = params.get(b"name")
        raw_filename = params.get(b"filename")
        if raw_filename is not None:
            # Kept for the history only: printable, bounded, never a NUL for PostgreSQL.
            name = raw_filename.decode("utf-8", "replace")
            self._part.filename = "".join(c for c in name if c.isprintable())[:255] or None
        # The first part named `file` is the upload; anything else is ignored.
        self._in_file = self._part.name == FILE_FIELD and not self.found
        if self._in_file:
            self.found = True
            self.filename = self._part.filename

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.file_bytes += end - start
            self._out.append(data[start:end])

    def _on_part_end(self) -> None:
        self._in_file = False


def _invalid(reason: str) -> MissingFile:
    return MissingFile(
        "The request body is not valid multipart/form-data; send the CSV in a field named `file`.",
        details={"reason": reason[:200]},
    )


@contextmanager
def _malformed() -> Iterator[None]:
    """A body (or boundary) python-multipart cannot parse is the client's mistake,
    answered 422 like a body with no file part."""
    try:
        yield
    except FormParserError as exc:
        raise _invalid(str(exc)) from None


async def _until_disconnect(body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        async for chunk in body:
            yield chunk
    except ClientDisconnect:
        raise ClientGone("The client went away before the whole file arrived.") from None
