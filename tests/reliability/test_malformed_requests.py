"""Malformed requests are 4xx, never a 500 (issue 25, item 4): multipart bodies and their
Content-Type, JSON bodies, and HTTP framing that only a raw socket can send (Content-Length
that lies, chunked bodies, gigantic headers) against uvicorn on 127.0.0.1.

What the app sees it answers in the one error shape (422 `missing_file` for a body that is
not the multipart it asked for, 422 `validation_error` or 400 `bad_request` for JSON);
what the HTTP parser refuses before the app (a broken chunk, two lengths) is uvicorn's
plain 400. Nothing of a malformed upload is loaded, and the service goes on.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.main import create_app
from tests.conftest import API_KEY, PRODUCTS, Db
from tests.helpers import assert_error, live_server, upload

WRITE = {"X-API-Key": API_KEY}
PART_HEAD = (
    'Content-Disposition: form-data; name="file"; filename="p.csv"\r\nContent-Type: text/csv'
)
TWO_PRODUCTS = "id,name,category,price\n1,Shirt,Shirts,10.00\n2,Pants,Pants,20.50\n"


def multipart(
    boundary: str, *, csv: str = TWO_PRODUCTS, head: str = PART_HEAD, close: str = "--\r\n"
) -> bytes:
    """One part (`head`, then `csv`) and the closing boundary's `--` and CRLF as `close`."""
    return f"--{boundary}\r\n{head}\r\n\r\n{csv}\r\n--{boundary}{close}".encode("latin-1")


def form(boundary: str) -> dict[str, str]:
    return {**WRITE, "Content-Type": f"multipart/form-data; boundary={boundary}"}


async def assert_nothing_loaded(db: Db) -> None:
    for table in ("products", "orders", "rejects"):
        assert await db.count(table) == 0, table
    assert await db.rows("SELECT 1 FROM uploads WHERE status = 'succeeded'") == []


class TestMultipart:
    """The upload's body and its Content-Type, each wrong in one way: 422 `missing_file`
    (the body is not multipart with a `file` part), with why in `details.reason`."""

    CASES = {
        # python-multipart refuses boundaries over 256 bytes in its constructor: was a 500.
        "boundary over 256 characters": (form("b" * 300), multipart("b" * 300)),
        "no boundary": ({**WRITE, "Content-Type": "multipart/form-data"}, multipart("xyz")),
        "empty boundary": (form(""), multipart("")),
        "boundary without a value": (
            {**WRITE, "Content-Type": "multipart/form-data; boundary"},
            multipart("xyz"),
        ),
        "boundary quoted and never closed": (form('"xyz'), multipart("xyz")),
        "two boundaries, the body on the first": (form("xyz; boundary=abc"), multipart("xyz")),
        "another multipart type": (
            {**WRITE, "Content-Type": "multipart/mixed; boundary=xyz"},
            multipart("xyz"),
        ),
        "no Content-Type": (WRITE, multipart("xyz")),
        "JSON": ({**WRITE, "Content-Type": "application/json"}, b'{"file": "1,2"}'),
        "empty body": (form("xyz"), b""),
        "garbage": (form("xyz"), b"\x00\x01\xfe garbage \r\n\r\n"),
        "a preamble python-multipart does not take": (form("xyz"), b"hi\r\n" + multipart("xyz")),
        # Cut short (a Content-Length that lies, a proxy that gave up): python-multipart
        # took the part as complete, so a prefix of the file loaded. Now refused.
        "no closing boundary": (form("xyz"), multipart("xyz", close="")[: -len("\r\n--xyz")]),
        "cut in the closing boundary": (form("xyz"), multipart("xyz", close="")[:-2]),
        "cut inside a row": (
            form("xyz"),
            f"--xyz\r\n{PART_HEAD}\r\n\r\n{TWO_PRODUCTS[:-3]}".encode(),
        ),
        "cut in the part's headers": (form("xyz"), f"--xyz\r\n{PART_HEAD[:30]}".encode()),
        "a part without Content-Disposition": (
            form("xyz"),
            multipart("xyz", head="Content-Type: text/csv"),
        ),
        "a part named otherwise": (
            form("xyz"),
            multipart("xyz", head='Content-Disposition: form-data; name="other"'),
        ),
        "a part header of 200 KB": (
            form("xyz"),
            multipart("xyz", head=f"X-Padding: {'a' * 200_000}\r\n{PART_HEAD}"),
        ),
        "a part header line without a colon": (
            form("xyz"),
            multipart("xyz", head=f"no colon here\r\n{PART_HEAD}"),
        ),
    }

    @pytest.mark.parametrize("case", sorted(CASES))
    async def test_is_422_and_loads_nothing(
        self, client: httpx.AsyncClient, db: Db, case: str
    ) -> None:
        headers, body = self.CASES[case]
        response = await client.post("/uploads/products", content=body, headers=headers)
        assert_error(response, 422, "missing_file")
        await assert_nothing_loaded(db)

    async def test_a_truncated_body_no_longer_loads_a_prefix(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        """The body ends in the last row's price (`20` of `20.50`), with no closing
        boundary: it loaded Pants at 20.00 and answered 201. Now 422, in the history."""
        body = f"--xyz\r\n{PART_HEAD}\r\n\r\n{TWO_PRODUCTS[:-4]}".encode()
        response = await client.post("/uploads/products", content=body, headers=form("xyz"))
        error = assert_error(response, 422, "missing_file")
        assert error["details"]["reason"] == "the body ends before its closing boundary"
        await assert_nothing_loaded(db)
        history = (await client.get("/uploads")).json()["items"]
        assert [(u["status"], u["error"]["code"]) for u in history] == [("failed", "missing_file")]

    @pytest.mark.parametrize(
        ("case", "boundary", "body"),
        [
            ("boundary of 256 characters", "b" * 256, multipart("b" * 256)),
            ("quoted boundary", '"xyz"', multipart("xyz")),
            ("boundary with a space", '"x y"', multipart("x y")),
            ("closing boundary without its CRLF", "xyz", multipart("xyz", close="--")),
            ("an epilogue after it", "xyz", multipart("xyz", close="--\r\nepilogue\r\n")),
            ("empty parameters around it", "xyz;;", multipart("xyz")),
        ],
    )
    async def test_what_is_valid_still_loads(
        self, client: httpx.AsyncClient, db: Db, case: str, boundary: str, body: bytes
    ) -> None:
        response = await client.post("/uploads/products", content=body, headers=form(boundary))
        assert response.status_code == 201, (case, response.text)
        assert await db.count("products") == 2

    async def test_a_filename_that_is_not_utf8_is_kept_printable(
        self, client: httpx.AsyncClient
    ) -> None:
        head = 'Content-Disposition: form-data; name="file"; filename="\xff\xfe\x01.csv"'
        response = await client.post(
            "/uploads/products", content=multipart("xyz", head=head), headers=form("xyz")
        )
        assert response.status_code == 201, response.text
        assert response.json()["filename"] == "\ufffd\ufffd.csv"


class TestJsonBodies:
    """The one POST that takes JSON (`/forecasts/runs`, its body optional)."""

    @pytest.mark.parametrize(
        ("content_type", "body", "status", "code"),
        [
            ("application/json", b"{", 422, "validation_error"),
            ("application/json", b'{"horizon": 7', 422, "validation_error"),
            ("application/json", b"\xff\xfe{}", 422, "validation_error"),
            ("application/json", b"[]", 422, "validation_error"),
            ("application/json", b'"horizon"', 422, "validation_error"),
            ("application/json", b'{"horizon": "seven"}', 422, "validation_error"),
            ("application/json", b'{"horizon": 1e400}', 422, "validation_error"),
            ("application/json", b'{"horizon": 0}', 422, "validation_error"),
            ("application/json", b"[" * 100_000 + b"]" * 100_000, 400, "bad_request"),
            ("text/plain", b'{"horizon": 7}', 422, "validation_error"),
            ("application/x-www-form-urlencoded", b"horizon=7", 422, "validation_error"),
            ("multipart/form-data; boundary=xyz", multipart("xyz"), 422, "validation_error"),
            ("multipart/form-data; boundary=" + "b" * 300, multipart("b" * 300), 422, None),
        ],
    )
    async def test_is_4xx_in_the_error_shape_and_starts_nothing(
        self,
        client: httpx.AsyncClient,
        db: Db,
        content_type: str,
        body: bytes,
        status: int,
        code: str | None,
    ) -> None:
        response = await client.post(
            "/forecasts/runs", content=body, headers={**WRITE, "Content-Type": content_type}
        )
        assert_error(response, status, code or response.json()["error"]["code"])
        assert await db.count("forecast_runs") == 0


# --- HTTP framing, over a raw socket ------------------------------------------------------


@pytest.fixture
def live(settings: Settings, clean_db: None) -> Iterator[tuple[str, int]]:
    with live_server(create_app(settings)) as base:
        host, port = base.removeprefix("http://").split(":")
        yield host, int(port)


def request(
    body: bytes,
    *,
    length: int | None = None,
    headers: bytes = b"",
    content_type: bytes = b"multipart/form-data; boundary=xyz",
    path: bytes = b"/uploads/products",
) -> bytes:
    head = (
        b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: " + API_KEY.encode()
        + b"\r\nContent-Type: " + content_type + b"\r\n"
    )  # fmt: skip
    if length is not None:
        head += b"Content-Length: %d\r\n" % length
    return head + headers + b"\r\n" + body


def chunked(body: bytes) -> bytes:
    return b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"


async def exchange(live: tuple[str, int], data: bytes, *, half_close: bool = False) -> list[int]:
    """Send `data` on a new connection (then end our side, if asked); read until the
    server closes it or, for a kept-alive connection, until a whole answer came; the
    statuses of every answer read."""
    reader, writer = await asyncio.open_connection(*live)
    try:
        writer.write(data)
        await writer.drain()
        if half_close:
            writer.write_eof()
        received = b""
        async with asyncio.timeout(30):  # a guard only: the server answers or closes
            while chunk := await reader.read(65536):
                received += chunk
                if _complete(received):
                    break
    finally:
        writer.close()
    return [int(s) for s in re.findall(rb"HTTP/1\.1 (\d{3}) ", received)]


def _complete(received: bytes) -> bool:
    """One answer with a Content-Length, whole."""
    head, sep, body = received.partition(b"\r\n\r\n")
    found = re.search(rb"(?i)\r\ncontent-length: (\d+)", head)
    return bool(sep and found and len(body) >= int(found.group(1)))


class TestFraming:
    """What only a raw socket sends. Each time: no 5xx, nothing half-loaded, and a
    proper upload and /readyz work after."""

    BODY = multipart("xyz")
    CASES: dict[str, tuple[bytes, bool, set[int]]] = {
        # The body ends where the length says: the closing boundary is missing (422),
        # and the rest is a second request uvicorn cannot parse (its 400).
        "Content-Length shorter than the body": (
            request(BODY, length=len(BODY) - 20),
            False,
            {400, 422},
        ),
        # The server waits for bytes that never come; the client gives up: nothing is
        # answered (there is no one to answer), and the upload fails as disconnected.
        "Content-Length longer than the body": (
            request(BODY, length=len(BODY) + 100),
            True,
            set(),
        ),
        "chunked": (
            request(chunked(BODY), headers=b"Transfer-Encoding: chunked\r\n"),
            False,
            {201},
        ),
        "chunked, a chunk size that is not hex": (
            request(b"zz\r\n" + BODY + b"\r\n0\r\n\r\n", headers=b"Transfer-Encoding: chunked\r\n"),
            False,
            {400},
        ),
        "chunked, cut short": (
            request(chunked(BODY)[:60], headers=b"Transfer-Encoding: chunked\r\n"),
            True,
            set(),
        ),
        "chunked and a Content-Length": (
            request(chunked(BODY), length=len(BODY), headers=b"Transfer-Encoding: chunked\r\n"),
            False,
            {400},
        ),
        "a negative Content-Length": (request(BODY, length=-5), False, {400}),
        "a Content-Length that is not a number": (
            request(BODY, headers=b"Content-Length: 12ab\r\n"),
            False,
            {400},
        ),
        "two Content-Lengths that differ": (
            request(BODY, length=len(BODY), headers=b"Content-Length: 3\r\n"),
            False,
            {400},
        ),
        "a header of 1 MB": (
            request(BODY, length=len(BODY), headers=b"X-Padding: " + b"a" * 1_000_000 + b"\r\n"),
            False,
            {201},
        ),
        "5,000 headers": (
            request(
                BODY, length=len(BODY), headers=b"".join(b"X-H%d: v\r\n" % i for i in range(5000))
            ),
            False,
            {201},
        ),
        "a Content-Type of 100 KB": (
            request(
                BODY,
                length=len(BODY),
                content_type=b"multipart/form-data; boundary=xyz; x=" + b"a" * 100_000,
            ),
            False,
            {201},
        ),
        "header bytes that are not ASCII": (
            request(BODY, length=len(BODY), headers=b"X-Name: \xff\xfe\x80\r\n"),
            False,
            {201},
        ),
        "a boundary that is not ASCII": (
            request(BODY, length=len(BODY), content_type=b"multipart/form-data; boundary=\xff\xfe"),
            False,
            {422},
        ),
        "a control character in the Content-Type": (
            request(
                BODY, length=len(BODY), content_type=b"multipart/form-data; a=\x7f; boundary=xyz"
            ),
            False,
            {400},
        ),
        "JSON, Content-Length shorter than the body": (
            request(
                b'{"horizon": 7}',
                length=5,
                content_type=b"application/json",
                path=b"/forecasts/runs",
            ),
            False,
            {400, 422},
        ),
    }

    @pytest.mark.parametrize("case", sorted(CASES))
    async def test_is_never_a_5xx(self, live: tuple[str, int], db: Db, case: str) -> None:
        data, half_close, allowed = self.CASES[case]
        statuses = await exchange(live, data, half_close=half_close)
        assert set(statuses) <= allowed, statuses
        assert all(s < 500 for s in statuses)
        async with httpx.AsyncClient(base_url=f"http://{live[0]}:{live[1]}") as client:
            await _until_settled(client)
            if 201 not in statuses:
                await assert_nothing_loaded(db)
            assert (await client.get("/readyz")).status_code == 200
            again = await upload(client, "products", PRODUCTS)
            assert again.status_code == 201, again.text


async def _until_settled(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """The upload history once no upload is running (10 s at most)."""
    for _ in range(100):
        items: list[dict[str, Any]] = (await client.get("/uploads")).json()["items"]
        if all(u["status"] != "running" for u in items):
            return items
        await asyncio.sleep(0.1)
    pytest.fail("an upload is still running")
