"""Hostile parameters on every read endpoint.

The routes are enumerated from the app, so a new GET endpoint fails
`test_every_get_route_is_covered` until it is given its parameters here. Every hostile
request answers a 4xx with the one error shape, never a 5xx; free-text filters given
an injection string answer an empty result, not someone else's rows; and the tables are
intact afterwards.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from app.analytics import queries as analytics_queries
from app.analytics import service as analytics_service
from app.kit.params import EARLIEST, LATEST
from tests.conftest import PRODUCTS, Db, table_counts
from tests.helpers import upload

INJECTIONS = (
    "' OR 1=1 --",
    "1' OR '1'='1",
    "1;DROP TABLE orders",
    "'; DROP TABLE products; --",
    "1 UNION SELECT * FROM uploads",
    "%00",
    "%27%20OR%201%3D1",
    "../../../../etc/passwd",
    "${jndi:ldap://127.0.0.1/a}",
    "<script>alert(1)</script>",
    "Ünïcödé 👕 \u202eRTL",
    "\u0000",
    "x" * 10_000,
    "9" * 400,
    "-1",
    "",
    " ",
)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


BAD = {
    "date": (
        "2024-02-30",
        "2023-02-29",
        "99999-01-01",
        "0000-01-01",
        "2024-13-01",
        "2024-1-1",
        "2024-12-01T00:00:00",
        "2024-12-01T00:00:00Z",
        "2024-12-01 ",
        "0",
        "2024",
        "1733011200",
        "today",
        "1e3",
        "-2024-01-01",
        *INJECTIONS,
    ),
    "limit": (
        "0",
        "-1",
        "1001",
        str(10**30),
        str(-(10**30)),
        "1e3",
        "1.5",
        "NaN",
        "inf",
        *INJECTIONS,
    ),
    "cursor": (
        "garbage",
        "!!!!",
        "=",
        b64(b"\x00\xff\xfe garbage"),
        b64(b"not json"),
        b64(b'{"a": 1}'),
        b64(b"[]"),
        b64(b"[1, 2, 3]"),
        b64(b'["2024-02-30", 1]'),
        b64(b'["99999-01-01", 1]'),
        b64(b"[1e309]"),
        b64(b"[99999999999999999999999]"),
        b64(b'[{"$gt": ""}]'),
        b64(b"[" * 300 + b"]" * 300),
        b64(json.dumps(["' OR 1=1 --", "x"]).encode()),
        "x" * 600,
        *[v for v in INJECTIONS if v],  # an empty cursor is no cursor: the first page
    ),
    "format": ("xml", "CSV ", "Json", "html", "csv;", *INJECTIONS),
    "fx_mode": ("yesterday", "LATEST", "order-date", *INJECTIONS),
    "basis": ("weekly", "Calendar", *INJECTIONS),
    "kind": ("customers", "PRODUCTS", *INJECTIONS),
    # Integer ids out of range or not canonical, which are codes where text ids are taken
    # (no product has them: a 404 or an empty answer), and hostile text.
    "product_id": ("0", "-1", str(2**31), str(2**64), "1.5", "1e3", "0x10", *INJECTIONS),
    "category": INJECTIONS,
    # An alert's event: a name no alert has is an empty page; anything else is refused.
    "event": ("UPLOAD_FAILED", "x" * 33, *INJECTIONS),
    # A feed reader's name for itself and its dataset: refused unless a plain name.
    "consumer": ("x" * 65, " a", "a b", "ä", *INJECTIONS),
    "dataset": ("x" * 65, " a", "a b", "ä", *INJECTIONS),
    "search": (*INJECTIONS, "%", "_", "\\", "x" * 101),
    "currency": ("EUR", "brl", "USD ", *INJECTIONS),
    "upload_id": (
        "0",
        "-1",
        str(2**63),
        str(2**64),
        "1.5",
        "1e3",
        "abc",
        "' OR 1=1 --",
        "1;DROP TABLE uploads",
    ),
}

ACCEPTS = (
    "application/xml",
    "text/html",
    "image/png",
    "application/json-patch+json",
    "%%%garbage%%%",
    "text/plain" + ";q=1" * 1000,
    "x/" + "y" * 5000,
)


@dataclass(frozen=True)
class Route:
    params: tuple[str, ...] = ()  # query parameters, by the kind of value they take
    negotiates: bool = False  # JSON or CSV by ?format= and Accept (406 otherwise)
    csv_only: bool = False  # CSV whatever ?format= says; an Accept without CSV is 406
    text_filters: tuple[str, ...] = ()  # free text: an injection string is just no match
    # A search box: blank is everything; any other hostile string is just no match.
    searches: tuple[str, ...] = ()
    base: tuple[tuple[str, str], ...] = ()  # required parameters, for the plain request
    # Reads of what may not exist yet (no forecast run in this data): 404 is a plain answer.
    missing_ok: bool = False


PERIOD = ("start", "end")
ROUTES: dict[str, Route] = {
    "/healthz": Route(),
    "/readyz": Route(),
    "/uploads": Route(params=("limit", "cursor", "kind")),
    "/uploads/{upload_id}": Route(),
    "/uploads/{upload_id}/rejects": Route(params=("limit", "cursor"), negotiates=True),
    "/fx/rates/latest": Route(),
    "/fx/rates": Route(params=("date",), base=(("date", "2024-12-02"),)),
    "/kpis": Route(params=(*PERIOD, "fx_mode"), negotiates=True),
    "/insights/daily-revenue": Route(
        params=(*PERIOD, "fx_mode", "limit", "cursor"), negotiates=True
    ),
    "/insights/average-ticket": Route(params=(*PERIOD, "fx_mode"), negotiates=True),
    "/insights/top-growth": Route(params=(*PERIOD, "basis", "limit"), negotiates=True),
    "/orders": Route(
        params=(*PERIOD, "fx_mode", "limit", "cursor", "product_id", "category"),
        negotiates=True,
        # A product id may be a text id (`?ids=text`): a hostile one is a code no product has.
        text_filters=("product_id", "category"),
    ),
    "/exports/order_full_information.csv": Route(csv_only=True),
    "/exports/fixed_order_full_information.csv": Route(params=("fx_mode",), csv_only=True),
    "/exports/kpi_product_orders.csv": Route(params=("fx_mode",), csv_only=True),
    # The change feeds: Parquet whatever the Accept header; reads are logged in `syncs`.
    "/exports/{feed}.parquet": Route(params=("since", *PERIOD, "consumer", "dataset")),
    "/syncs": Route(params=("limit", "cursor", "feed", "consumer")),
    "/freshness": Route(),
    "/instance": Route(),
    "/alerts": Route(params=("event", "limit", "cursor")),
    "/exports/predicted_product_demand.csv": Route(csv_only=True),
    "/exports/predicted_level_demand.csv": Route(csv_only=True),
    "/forecasts/runs/latest": Route(negotiates=True, missing_ok=True),
    "/forecasts/runs/{run_id}": Route(negotiates=True, missing_ok=True),
    "/forecasts/products": Route(negotiates=True),
    "/forecasts/products/{product_id}": Route(negotiates=True, missing_ok=True),
    "/forecasts/categories": Route(negotiates=True),
    "/forecasts/categories/{category}": Route(negotiates=True, missing_ok=True),
    "/forecasts/total": Route(negotiates=True, missing_ok=True),
    "/products": Route(params=("search", "limit"), negotiates=True, searches=("search",)),
    "/products/{product_id}": Route(),
    "/forecasts/accuracy": Route(negotiates=True),
    "/insights/top-categories": Route(params=(*PERIOD, "limit"), negotiates=True),
    "/forecasts/products/{product_id}/history": Route(
        params=("days",), negotiates=True, missing_ok=True
    ),
    "/forecasts/categories/{category}/history": Route(
        params=("days",), negotiates=True, missing_ok=True
    ),
    "/forecasts/total/history": Route(params=("days",), negotiates=True, missing_ok=True),
}
UNDOCUMENTED = {p for p in ROUTES if p.startswith("/dashboard/")}
# The documentation pages, the dashboard page and the metrics take no input of ours:
# unknown parameters change nothing (test_pages_without_parameters).
DOCS = (
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/docs-static/redoc.standalone.js",
    "/",
    "/metrics",
)

KIND_OF = {
    "start": "date",
    "end": "date",
    "date": "date",
    "since": "cursor",
    "feed": "kind",
    "days": "limit",
}


def get_routes(app: FastAPI) -> set[str]:
    return {
        str(context.path)
        for context in iter_route_contexts(app.routes)
        if "GET" in (getattr(context, "methods", None) or ())
    }


# The uploads' own paths, read: always 405 (POST only), so that they are never taken for
# an upload id (tests/test_errors.py).
POST_ONLY = {"/uploads/orders", "/uploads/products"}


def test_every_get_route_is_covered(app: FastAPI) -> None:
    assert get_routes(app) == set(ROUTES) | set(DOCS) | POST_ONLY


def assert_error_shape(response: httpx.Response, label: str) -> None:
    assert 400 <= response.status_code < 500, (label, response.status_code, response.text[:300])
    body = response.json()
    assert set(body) == {"error"}, label
    assert set(body["error"]) == {"code", "message", "details"}, label
    assert isinstance(body["error"]["code"], str) and body["error"]["code"], label
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], label


SAMPLE_ORDERS = (
    "id,product_id,quantity,created_date\n"
    "1,1,2,2024-12-01\n2,2,1,2024-12-02\n3,3,5,2024-12-02\n4,1,1,2024-12-04\n"
)


@pytest.fixture
async def loaded(client: httpx.AsyncClient, db: Db) -> dict[str, Any]:
    """Some data (and one upload with rejects), and a fingerprint of the tables."""
    await upload(client, "products", PRODUCTS)
    report = (await upload(client, "orders", SAMPLE_ORDERS + "5,99,1,2024-12-05\n")).json()
    assert report["rows_inserted"] == 4
    return {"upload_id": report["upload_id"], "counts": await table_counts(db)}


async def fingerprint(db: Db) -> list[tuple[Any, ...]]:
    return await db.rows(
        "SELECT (SELECT string_agg(concat_ws(',', product_id, name, category, price), ';'"
        " ORDER BY product_id) FROM products),"
        " (SELECT string_agg(concat_ws(',', order_id, product_id, quantity, created_date), ';'"
        " ORDER BY order_id) FROM orders)"
    )


Params = list[tuple[str, str]]


def hostile_requests(path: str, route: Route) -> list[tuple[str, Params, dict[str, str], set[int]]]:
    """(label, params, headers, statuses allowed) for one route."""
    out: list[tuple[str, Params, dict[str, str], set[int]]] = []
    for name in route.params:
        kind = KIND_OF.get(name, name)
        for value in BAD[kind]:
            label = f"{name}={value[:40]!r}"
            if name in route.text_filters or name in route.searches:
                # Free text: matches nothing (200 empty), or refused (NUL, too long, empty).
                out.append((label, [(name, value)], {}, {200, 422}))
            else:
                out.append((label, [(name, value)], {}, {422}))
        # Repeated: the last value counts (Starlette), so a hostile last one is refused.
        free = name in route.text_filters or name in route.searches
        allowed = {200, 422} if free else {422}
        out.append((f"{name} repeated", [(name, "1"), (name, BAD[kind][0])], {}, allowed))
    if route.negotiates:
        for value in BAD["format"]:
            out.append((f"format={value[:40]!r}", [("format", value)], {}, {422}))
        for accept in ACCEPTS:
            out.append((f"Accept: {accept[:40]!r}", [], {"Accept": accept}, {406}))
    if route.csv_only:
        for accept in ACCEPTS:
            out.append((f"Accept: {accept[:40]!r}", [], {"Accept": accept}, {406}))
    for name, value in (("nope", "' OR 1=1 --"), ("__proto__", "x"), ("x" * 2000, "y" * 2000)):
        # Unknown parameters are ignored: the answer is the plain one.
        out.append((f"unknown {name[:20]}", [(name, value)], {}, {200}))
    return out


def assert_documented(app: FastAPI, path: str, response: httpx.Response) -> None:
    """The status and media type are ones /openapi.json declares for the operation."""
    declared = app.openapi()["paths"][path]["get"]["responses"]
    status = str(response.status_code)
    assert status in declared, f"status {status} is not in the OpenAPI document"
    media = response.headers["content-type"].split(";")[0]
    assert media in declared[status].get("content", {}), f"{media} is not declared for {status}"


@pytest.mark.parametrize("path", sorted(ROUTES))
async def test_hostile_parameters(
    app: FastAPI, client: httpx.AsyncClient, db: Db, loaded: dict[str, Any], path: str
) -> None:
    route = ROUTES[path]
    url = path.replace("{upload_id}", str(loaded["upload_id"])).replace("{feed}", "orders")
    url = url.replace("{run_id}", "1").replace("{product_id}", "1").replace("{category}", "Shirts")
    before = await fingerprint(db)
    baseline = (await client.get(url, params=route.base)).content
    failures: list[str] = []
    for label, params, headers, allowed in hostile_requests(path, route):
        if route.missing_ok:
            allowed = {*allowed, 404}
        response = await client.get(url, params=[*route.base, *params], headers=headers)
        try:
            if path not in UNDOCUMENTED:
                assert_documented(app, path, response)
            if response.status_code == 200:
                assert 200 in allowed
                if label.startswith("unknown") and "readyz" not in path and "fx" not in path:
                    # (the upload history and the freshness figures move with time)
                    assert response.content == baseline or path.startswith(
                        ("/uploads", "/freshness")
                    )
                if route.text_filters and any(f"{f}=" in label for f in route.text_filters):
                    assert response.json()["items"] == [], "an injection string matched rows"
                searched = dict(params)
                if any(searched.get(f, "").strip() for f in route.searches):
                    assert response.json()["items"] == [], "an injection string matched rows"
            else:
                assert response.status_code in allowed, f"status {response.status_code}"
                assert_error_shape(response, label)
        except AssertionError as exc:
            failures.append(f"{label}: {exc} {response.text[:200]!r}")
    assert not failures, "\n".join(failures)
    assert await fingerprint(db) == before
    assert await table_counts(db) == loaded["counts"]


@pytest.mark.parametrize("path", DOCS)
async def test_pages_without_parameters(client: httpx.AsyncClient, path: str) -> None:
    plain = await client.get(path)
    assert plain.status_code == 200
    for name, value in (("nope", "' OR 1=1 --"), ("__proto__", "x"), ("x" * 2000, "y" * 2000)):
        response = await client.get(path, params={name: value})
        assert response.status_code == 200, (path, name)
        if path != "/metrics":  # its counters move with every request
            assert response.content == plain.content


class TestPathParameters:
    @pytest.mark.parametrize("suffix", ["", "/rejects"])
    async def test_bad_upload_ids(self, client: httpx.AsyncClient, suffix: str) -> None:
        for value in BAD["upload_id"]:
            response = await client.get(f"/uploads/{value}{suffix}")
            assert response.status_code in (404, 422), (value, response.text)
            assert_error_shape(response, value)

    @pytest.mark.parametrize("suffix", ["", "/rejects"])
    async def test_an_absent_upload_is_404(self, client: httpx.AsyncClient, suffix: str) -> None:
        response = await client.get(f"/uploads/{2**63 - 1}{suffix}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "upload_not_found"


class TestRightAnswers:
    async def test_daily_revenue_pages_over_ten_thousand_years(
        self, client: httpx.AsyncClient, loaded: dict[str, Any], db: Db
    ) -> None:
        """Regression: orders on 0001-01-01 and 9999-12-31 (real calendar days) made every
        page of daily revenue build all 3.65 million days first (about 3 s a page here).
        Judged by the days each page's query makes (its plan's actual rows), not by time."""
        far = "id,product_id,quantity,created_date\n7,1,1,0001-01-01\n8,2,1,9999-12-31\n"
        await upload(client, "orders", far)
        first = (await client.get("/insights/daily-revenue", params={"limit": 3})).json()
        assert [i["date"] for i in first["items"]] == ["0001-01-01", "0001-01-02", "0001-01-03"]
        assert [i["revenue_brl_7d_avg"] for i in first["items"]] == ["10.00", "5.00", "3.33"]
        cursor = b64(json.dumps(["2024-11-30"]).encode())
        page = (
            await client.get("/insights/daily-revenue", params={"limit": 3, "cursor": cursor})
        ).json()
        assert [i["date"] for i in page["items"]] == ["2024-12-01", "2024-12-02", "2024-12-03"]
        # The first page day's average counts the six days before it (zero) too.
        assert page["items"][0]["revenue_brl_7d_avg"] == "2.86"
        cursor = b64(json.dumps(["9999-12-30"]).encode())
        last = (await client.get("/insights/daily-revenue", params={"cursor": cursor})).json()
        assert [i["date"] for i in last["items"]] == ["9999-12-31"]
        assert last["next_cursor"] is None
        pages = [(None, 3), ("2024-11-30", 3), ("9999-12-30", 1000)]
        for after, limit in pages:
            ((plan,),) = await db.rows(
                f"EXPLAIN (ANALYZE, FORMAT JSON) {analytics_queries.DAILY_REVENUE}",
                after=after,
                limit=limit,
                start=EARLIEST,
                end=LATEST,
            )
            plan = json.loads(plan) if isinstance(plan, str) else plan
            days = [n["Actual Rows"] for n in _plan_nodes(plan[0]["Plan"])
                    if n.get("Function Name") == "generate_series"]  # fmt: skip
            assert days and max(days) <= limit + 7, (after, days)

    async def test_pages_at_the_ends_of_the_calendar(
        self, client: httpx.AsyncClient, loaded: dict[str, Any]
    ) -> None:
        """Regression: asyncpg sends date.min and date.max (0001-01-01, 9999-12-31) as
        -infinity and infinity. A cursor on 9999-12-31 skipped the orders after it on that
        day, one on 0001-01-01 repeated that day, and top growth over a period starting
        0001-01-01 read the day before it (1 BC) and answered 500."""
        ends = (
            "id,product_id,quantity,created_date\n"
            "11,1,1,0001-01-01\n12,2,2,0001-01-01\n13,1,3,9999-12-31\n14,2,1,9999-12-31\n"
        )
        assert (await upload(client, "orders", ends)).json()["rows_inserted"] == 4
        seen: list[int] = []
        params: dict[str, Any] = {"limit": 1}
        while True:
            body = (await client.get("/orders", params=params)).json()
            seen += [item["order_id"] for item in body["items"]]
            if body["next_cursor"] is None:
                break
            params["cursor"] = body["next_cursor"]
        assert seen == [11, 12, 1, 2, 3, 4, 13, 14]
        days: list[str] = []
        params = {"limit": 1}
        while len(days) < 3:
            body = (await client.get("/insights/daily-revenue", params=params)).json()
            days += [item["date"] for item in body["items"]]
            params["cursor"] = body["next_cursor"]
        assert days == ["0001-01-01", "0001-01-02", "0001-01-03"]
        for basis in ("calendar", "previous_sale"):
            response = await client.get(
                "/insights/top-growth", params={"limit": 50, "basis": basis}
            )
            assert response.status_code == 200, response.text
            assert all(i["previous_date"] >= "0001-01-01" for i in response.json()["items"])
        top = (await client.get("/insights/top-growth", params={"limit": 50})).json()["items"]
        assert {"0001-01-01"} - {i["date"] for i in top} == {"0001-01-01"}  # no day before it

    async def test_an_order_on_the_last_day_has_its_usd_in_every_csv(
        self, client: httpx.AsyncClient, loaded: dict[str, Any]
    ) -> None:
        """Regression: in `order_date` mode the CSV joined each order to its day's rate
        sent as a date array, where asyncpg sent 9999-12-31 as infinity: the order's USD
        cell came out empty."""
        await upload(client, "orders", "id,product_id,quantity,created_date\n13,1,3,9999-12-31\n")
        params = {"fx_mode": "order_date"}
        items = (await client.get("/orders", params={**params, "limit": 1000})).json()["items"]
        usd = {str(i["order_id"]): i["total_price_usd"] for i in items}
        assert usd["13"] != ""
        listing = await client.get("/orders", params={**params, "format": "csv"})
        rows = list(csv.DictReader(io.StringIO(listing.text)))
        assert {r["order_id"]: r["total_price_usd"] for r in rows} == usd
        export = await client.get("/exports/fixed_order_full_information.csv", params=params)
        rows = list(csv.DictReader(io.StringIO(export.text)))
        assert {r["order_id"]: r["total_price_us"] for r in rows} == usd

    @pytest.mark.parametrize("fx_mode", ["latest", "order_date"])
    async def test_daily_revenue_csv_streams_page_by_page(
        self,
        client: httpx.AsyncClient,
        loaded: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch,
        fx_mode: str,
    ) -> None:
        """Regression: the CSV built every day of the series in memory at once (orders on
        0001-01-01 and 9999-12-31: 6 GiB and 86 s here). Now it is read a page of days at
        a time; with pages of 2 days it must still equal the JSON answer, day for day."""
        monkeypatch.setattr(analytics_service, "DAILY_CSV_PAGE", 2)
        params = {"fx_mode": fx_mode}
        items = (await client.get("/insights/daily-revenue", params=params)).json()["items"]
        assert len(items) == 4  # 2024-12-01 … 2024-12-04, the 3rd zero-filled
        response = await client.get("/insights/daily-revenue", params={**params, "format": "csv"})
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert rows == [{k: str(v) for k, v in item.items()} for item in items]
        assert response.headers["X-FX-Mode"] == fx_mode

    async def test_a_day_without_a_rate_is_a_documented_404(
        self, app: FastAPI, client: httpx.AsyncClient, loaded: dict[str, Any]
    ) -> None:
        """Regression: in `order_date` mode an order older than every published rate makes
        the USD answers 404 `rate_not_found`, which the OpenAPI document did not declare."""
        await upload(client, "orders", "id,product_id,quantity,created_date\n9,1,1,0001-01-01\n")
        for path in (
            "/orders",
            "/insights/daily-revenue",
            "/exports/fixed_order_full_information.csv",
        ):
            response = await client.get(path, params={"fx_mode": "order_date"})
            assert response.status_code == 404, (path, response.text)
            assert response.json()["error"]["code"] == "rate_not_found"
            assert_documented(app, path, response)
        response = await client.get("/orders")
        assert response.status_code == 200

    async def test_injection_as_a_category_matches_nothing(
        self, client: httpx.AsyncClient, loaded: dict[str, Any]
    ) -> None:
        assert len((await client.get("/orders")).json()["items"]) == 4
        for value in ("' OR 1=1 --", "Shirts' OR '1'='1", "Shirts%", "%", "_hirts", "Shirts\\"):
            body = (await client.get("/orders", params={"category": value})).json()
            assert body["items"] == [], value
            csv_body = await client.get("/orders", params={"category": value, "format": "csv"})
            assert csv_body.text.count("\n") == 1, value  # the header only
        assert (
            len((await client.get("/orders", params={"category": "Shirts"})).json()["items"]) == 2
        )

    async def test_the_biggest_valid_cursor_is_an_empty_page(
        self, client: httpx.AsyncClient, loaded: dict[str, Any]
    ) -> None:
        for path, key in (
            ("/orders", ["9999-12-31", 2**63 - 1]),
            ("/insights/daily-revenue", ["9999-12-31"]),
            ("/uploads", [-(2**63)]),
        ):
            cursor = b64(json.dumps(key).encode())
            response = await client.get(path, params={"cursor": cursor})
            assert response.status_code == 200, (path, response.text)
            assert response.json()["items"] == []

    async def test_a_year_or_a_timestamp_is_not_a_date(
        self, client: httpx.AsyncClient, loaded: dict[str, Any]
    ) -> None:
        """Regression: pydantic read `end=2024` as the Unix timestamp 2024 (1970-01-01) and
        answered an empty period; `start=2024-12-01T00:00Z` passed as a day."""
        for value in ("2024", "0", "1733011200", "2024-12-01T00:00:00Z", "2024-12-01T00:00:00"):
            for name in ("start", "end"):
                response = await client.get("/kpis", params={name: value})
                assert response.status_code == 422, (name, value, response.text)
                assert response.json()["error"]["details"][0]["loc"] == ["query", name]
            response = await client.get("/fx/rates", params={"date": value})
            assert response.status_code == 422, (value, response.text)
        assert (await client.get("/kpis", params={"start": "2024-12-02"})).status_code == 200

    async def test_extreme_dates_are_answered(
        self, client: httpx.AsyncClient, loaded: dict[str, Any]
    ) -> None:
        for path in (
            "/kpis",
            "/insights/daily-revenue",
            "/insights/average-ticket",
            "/insights/top-growth",
            "/orders",
        ):
            response = await client.get(path, params={"start": "0001-01-01", "end": "9999-12-31"})
            assert response.status_code == 200, (path, response.text)
        for day in ("0001-01-01", "1900-01-01"):
            response = await client.get("/fx/rates", params={"date": day})
            assert response.status_code == 404, response.text
            assert response.json()["error"]["code"] == "rate_not_found"
        response = await client.get("/fx/rates", params={"date": "9999-12-31"})
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "date_in_future"


def _plan_nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    """A plan node of EXPLAIN's JSON and every node under it."""
    return [node, *(n for child in node.get("Plans", []) for n in _plan_nodes(child))]
