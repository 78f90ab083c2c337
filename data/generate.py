"""Deterministic generator of products and orders CSVs in the assessment's format.

    python data/generate.py --products 20 --orders 300 --days 30 --seed 7 --out data/

Products are `id,name,category,price` (BRL, 2 decimals); orders are
`id,product_id,quantity,created_date` with dates written `'YYYY-MM-DD'`, in date order,
with a few days that have no orders (so zero-filled charts have gaps to fill). The same
arguments always give the same bytes. Standard library only, so it runs anywhere.
"""

from __future__ import annotations

import argparse
import random
from datetime import date, timedelta
from pathlib import Path

CATEGORIES = [
    "Shirts", "Pants", "Jackets", "Shoes", "Hats",
    "Socks", "Dresses", "Bags", "Belts", "Scarves",
]  # fmt: skip
CHUNK = 50_000


def write_products(path: Path, *, count: int, seed: int) -> None:
    rng = random.Random(f"products:{seed}")
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("id,name,category,price\n")
        for product_id in range(1, count + 1):
            category = CATEGORIES[rng.randrange(min(count, len(CATEGORIES)))]
            cents = rng.randrange(500, 30_000)
            fh.write(
                f"{product_id},Product_{product_id},{category},{cents // 100}.{cents % 100:02d}\n"
            )


def day_counts(*, orders: int, days: int, rng: random.Random) -> list[int]:
    """How many orders fall on each day: random weights, about one day in twelve empty."""
    weights = [
        0.0 if days > 3 and rng.random() < 1 / 12 else rng.uniform(0.5, 1.5) for _ in range(days)
    ]
    if not any(weights):
        weights[0] = 1.0
    total = sum(weights)
    counts = [int(orders * w / total) for w in weights]
    busiest = max(range(days), key=weights.__getitem__)
    counts[busiest] += orders - sum(counts)  # rounding remainder, so the total is exact
    return counts


def write_orders(
    path: Path, *, count: int, products: int, days: int, start: date, seed: int, final_newline: bool
) -> None:
    rng = random.Random(f"orders:{seed}")
    counts = day_counts(orders=count, days=days, rng=rng)
    quantities = [1, 1, 1, 2, 2, 3, 4, 5, 6, 8]  # mostly small, as in the assessment
    order_id = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("id,product_id,quantity,created_date")
        for offset, on_day in enumerate(counts):
            day = f"'{start + timedelta(days=offset)}'"
            done = 0
            while done < on_day:
                n = min(CHUNK, on_day - done)
                ids = rng.choices(range(1, products + 1), k=n)
                qty = rng.choices(quantities, k=n)
                lines = [f"\n{order_id + i + 1},{ids[i]},{qty[i]},{day}" for i in range(n)]
                fh.write("".join(lines))
                order_id += n
                done += n
        if final_newline:
            fh.write("\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--products", type=int, default=20)
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2024, 11, 1))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--final-newline", action="store_true", help="end orders.csv with a newline"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    if args.products < 1 or args.orders < 0 or args.days < 1:
        parser.error("--products and --days must be at least 1, --orders at least 0")
    args.out.mkdir(parents=True, exist_ok=True)
    write_products(args.out / "products.csv", count=args.products, seed=args.seed)
    write_orders(
        args.out / "orders.csv",
        count=args.orders,
        products=args.products,
        days=args.days,
        start=args.start,
        seed=args.seed,
        final_newline=args.final_newline,
    )


if __name__ == "__main__":
    main()
