"""The sample generator in data/: deterministic, in the assessment's format."""

import csv
import hashlib
import runpy
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def generate() -> Any:
    return runpy.run_path(str(ROOT / "data" / "generate.py"))["main"]


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for name in ("products.csv", "orders.csv"):
        h.update((folder / name).read_bytes())
    return h.hexdigest()


class TestGenerator:
    def test_same_seed_same_bytes(self, generate: Any, tmp_path: Path) -> None:
        generate(["--orders", "500", "--seed", "3", "--out", str(tmp_path / "a")])
        generate(["--orders", "500", "--seed", "3", "--out", str(tmp_path / "b")])
        generate(["--orders", "500", "--seed", "4", "--out", str(tmp_path / "c")])
        assert digest(tmp_path / "a") == digest(tmp_path / "b")
        assert digest(tmp_path / "a") != digest(tmp_path / "c")

    def test_format_matches_the_assessment(self, generate: Any, tmp_path: Path) -> None:
        generate(["--products", "7", "--orders", "1000", "--days", "31", "--out", str(tmp_path)])
        with (tmp_path / "products.csv").open(newline="") as fh:
            products = list(csv.DictReader(fh))
        assert list(products[0]) == ["id", "name", "category", "price"]
        assert [p["id"] for p in products] == [str(i) for i in range(1, 8)]
        assert all(len(p["price"].split(".")[1]) == 2 for p in products)

        raw = (tmp_path / "orders.csv").read_text()
        assert not raw.endswith("\n")  # as the original file
        with (tmp_path / "orders.csv").open(newline="") as fh:
            orders = list(csv.DictReader(fh))
        assert list(orders[0]) == ["id", "product_id", "quantity", "created_date"]
        assert len(orders) == 1000
        assert len({o["id"] for o in orders}) == 1000
        assert all(
            o["created_date"].startswith("'") and o["created_date"].endswith("'") for o in orders
        )
        days = [date.fromisoformat(o["created_date"].strip("'")) for o in orders]
        assert days == sorted(days)
        assert {int(o["product_id"]) for o in orders} <= set(range(1, 8))
        assert all(int(o["quantity"]) >= 1 for o in orders)
        # Some calendar days have no orders, so zero-filled series have gaps to fill.
        span = (days[-1] - days[0]).days + 1
        assert len(Counter(days)) < span

    def test_committed_sample_is_what_the_generator_makes(
        self, generate: Any, tmp_path: Path
    ) -> None:
        generate(["--out", str(tmp_path)])
        assert digest(tmp_path) == digest(ROOT / "data")


class TestMarketplace:
    """`--demand marketplace`: the long tail issue 26's benchmark is judged on."""

    def test_a_long_tail_of_launches_in_74_categories(self, generate: Any, tmp_path: Path) -> None:
        generate(["--demand", "marketplace", "--products", "3000", "--days", "730",
                  "--out", str(tmp_path)])  # fmt: skip
        with (tmp_path / "products.csv").open() as fh:
            category = {int(r["id"]): r["category"] for r in csv.DictReader(fh)}
        with (tmp_path / "orders.csv").open() as fh:
            lines = [
                (int(r["product_id"]), date.fromisoformat(r["created_date"].strip("'")),
                 int(r["quantity"]))
                for r in csv.DictReader(fh)
            ]  # fmt: skip
        assert len(set(category.values())) == 74
        assert len({category[p] for p, _, _ in lines}) >= 70
        end = max(d for _, d, _ in lines)
        cutoff = date.fromordinal(end.toordinal() - 28)
        before = {p for p, d, _ in lines if d <= cutoff}
        last = [(p, q) for p, d, q in lines if d > cutoff]
        assert 1 - len({p for p, _ in last}) / len(category) >= 0.85  # most sell nothing
        new_units = sum(q for p, q in last if p not in before)
        assert new_units / sum(q for _, q in last) >= 0.25  # launches carry much of it
        sold = Counter(p for p, _, _ in lines)
        assert len(sold) < 0.8 * len(category)  # many never sell at all
        assert 3 <= len(lines) / 3000 <= 6  # about 100,000 lines at 30,000 products
