import httpx

from tests.conftest import REFERENCE
from tests.helpers import upload


async def test_reference(client: httpx.AsyncClient) -> None:
    r = await upload(client, "products", (REFERENCE / "data" / "products.csv").read_bytes())
    print(r.status_code, r.json())
    r = await upload(client, "orders", (REFERENCE / "data" / "orders.csv").read_bytes())
    print(r.status_code, r.json())
    r = await upload(client, "orders", "id,product_id,quantity,created_date\n1,1,1,2024-01-01\n99,\"5\",x,'2024-02-30'\n100,999,1,2024-01-01\n101,1,1,2024-01-01,extra\n")
    print(r.status_code, r.json())
    rid = r.json()["upload_id"]
    r = await client.get(f"/uploads/{rid}/rejects")
    print(r.json())
    r = await client.get(f"/uploads/{rid}/rejects?format=csv")
    print(r.text)
