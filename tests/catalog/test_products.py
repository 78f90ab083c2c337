"""GET /products: best sellers first, found by id, name or category, JSON or CSV."""

from __future__ import annotations

import httpx

from tests.helpers import upload

PRODUCTS = (
    "id,name,category,price\n"
    "1,Blue Shirt,Shirts,10.00\n"
    "2,Red Shirt,Shirts,12.00\n"
    "3,Black Pants,Pants,30.00\n"
    "4,100% Cotton Tee,Shirts,9.00\n"
    "5,Un_der Score,Misc,1.00\n"
)
ORDERS = (
    "id,product_id,quantity,created_date\n1,2,5,2024-12-01\n2,3,9,2024-12-01\n3,1,1,2024-12-02\n"
)


async def loaded(client: httpx.AsyncClient) -> None:
    assert (await upload(client, "products", PRODUCTS)).status_code == 201
    assert (await upload(client, "orders", ORDERS)).status_code == 201


async def ids(client: httpx.AsyncClient, **params: str | int) -> list[int]:
    response = await client.get("/products", params=params)
    assert response.status_code == 200, response.text
    return [i["product_id"] for i in response.json()["items"]]


async def test_best_sellers_first_then_by_id(client: httpx.AsyncClient) -> None:
    await loaded(client)
    assert await ids(client) == [3, 2, 1, 4, 5]
    assert await ids(client, limit=2) == [3, 2]
    first = (await client.get("/products", params={"limit": 1})).json()["items"][0]
    assert first == {"product_id": 3, "name": "Black Pants", "category": "Pants", "units_sold": 9}


async def test_search_by_id_name_or_category_any_case(client: httpx.AsyncClient) -> None:
    await loaded(client)
    assert await ids(client, search="shirt") == [2, 1, 4]  # names and the category
    assert await ids(client, search="PANTS") == [3]
    assert await ids(client, search="4") == [4]  # an exact id (no name holds a 4)
    assert await ids(client, search="  red ") == [2]  # spaces around are not searched
    assert await ids(client, search="nothing like it") == []


async def test_like_characters_are_taken_literally(client: httpx.AsyncClient) -> None:
    await loaded(client)
    assert await ids(client, search="%") == [4]  # only the name with a percent sign
    assert await ids(client, search="_") == [5]
    assert await ids(client, search="n_d") == [5]  # not "any one character"
    assert await ids(client, search="\\") == []


async def test_csv_and_bad_parameters(client: httpx.AsyncClient) -> None:
    await loaded(client)
    text = (await client.get("/products", params={"format": "csv", "limit": 1})).text
    assert text.splitlines() == ["product_id,name,category,units_sold", "3,Black Pants,Pants,9"]
    assert await ids(client, search="") == [3, 2, 1, 4, 5]  # empty: every product
    for params in ({"limit": 0}, {"limit": 1001}, {"search": "x" * 101}, {"search": "a\x00"}):
        response = await client.get("/products", params=params)
        assert response.status_code == 422, params
        assert response.json()["error"]["code"] == "validation_error"
