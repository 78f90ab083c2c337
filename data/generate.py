"""Deterministic generator of products and orders CSVs in the assessment's format.

    python data/generate.py --products 20 --orders 300 --days 30 --seed 7 --out data/

Products are `id,name,category,price` (BRL, 2 decimals); orders are
`id,product_id,quantity,created_date` with dates written `'YYYY-MM-DD'`, in date order,
with a few days that have no orders (so zero-filled charts have gaps to fill). The same
arguments always give the same bytes. Standard library only, so it runs anywhere.

    python data/generate.py --demand realistic --products 1000 --days 730 --out /tmp/d

`--demand realistic` (the forecasting benchmark's and tests' data; the committed sample
is the default `uniform`) draws each product's daily units instead: a level (most
products small, an intermittent long tail selling on few days), a weekly profile per
category, a trend, Brazilian holidays (fewer sales), promotions (a week of more sales),
and products that start late or stop early. `--orders` is then ignored.

    python data/generate.py --demand marketplace --products 30000 --days 730 --out /tmp/m

`--demand marketplace` is a real marketplace's long tail: products in 74 categories of
very unequal size, launched all the time (a fifth before the first day, the rest
spread over the period, more of them as the shop grows); each sells at a rate that
starts at its launch and fades over months, most of them a handful of times in all, a
few every day. Order lines of 1 unit (sometimes 2 or 3), weekends busier, Black Friday
and the weeks before Christmas too, holidays quieter. At 30,000 products × 730 days:
about 100,000 order lines, over 90% of products selling nothing in a given 28 days, and
a large share of each month's units from products that never sold before. Products are
written with their categories (`Category 01` … `Category 74`); `--orders` is ignored.
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


# --- realistic demand -------------------------------------------------------------------

# Weekday multipliers, Monday first, per category (rotated so categories differ).
WEEK = [0.9, 0.85, 0.9, 1.0, 1.25, 1.45, 0.65]
FIXED_HOLIDAYS = [(1, 1), (4, 21), (5, 1), (9, 7), (10, 12), (11, 2), (11, 15), (11, 20), (12, 25)]


def easter(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


def holidays_of(year: int) -> set[date]:
    """National holidays, Carnival (Monday, Tuesday), Good Friday, Corpus Christi."""
    e = easter(year)
    moving = {
        e - timedelta(days=48),
        e - timedelta(days=47),
        e - timedelta(days=2),
        e + timedelta(days=60),
    }
    return {date(year, m, d) for m, d in FIXED_HOLIDAYS} | moving


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (Knuth's product for small means, a rounded normal for large)."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, lam**0.5)))
    limit, k, p = pow(2.718281828459045, -lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def daily_units(*, products: int, days: int, start: date, seed: int) -> list[list[int]]:
    """units[day][product - 1] under the realistic model (module docstring)."""
    rng = random.Random(f"demand:{seed}")
    off = set().union(*(holidays_of(y) for y in range(start.year, start.year + days // 365 + 2)))
    prod_rng = random.Random(f"products:{seed}")
    categories = []
    for _ in range(products):  # the draws of write_products, so categories match its file
        categories.append(CATEGORIES[prod_rng.randrange(min(products, len(CATEGORIES)))])
        prod_rng.randrange(500, 30_000)
    plans = []
    for p in range(products):
        tail = rng.random() < 0.35  # the intermittent long tail
        level = rng.uniform(0.05, 0.6) if tail else rng.lognormvariate(1.0, 0.8)
        first = rng.randrange(days // 2, days - days // 8) if rng.random() < 0.2 else 0
        last = rng.randrange(days // 2, days - 30) if days > 90 and rng.random() < 0.05 else days
        trend = rng.uniform(-0.4, 0.8)
        shift = CATEGORIES.index(categories[p]) % 7
        week = WEEK[shift:] + WEEK[:shift]
        promos = {rng.randrange(days) for _ in range(days // 120)}
        plans.append((level, first, last, trend, week, promos))
    units = []
    for t in range(days):
        day = start + timedelta(days=t)
        holiday = 0.45 if day in off else 1.0
        row = []
        for level, first, last, trend, week, promos in plans:
            if not first <= t < last:
                row.append(0)
                continue
            promo = 1.8 if any(0 <= t - s < 7 for s in promos) else 1.0
            lam = level * week[day.weekday()] * (1 + trend * t / days) * holiday * promo
            row.append(poisson(rng, lam))
        units.append(row)
    return units


def write_realistic_orders(path: Path, *, products: int, days: int, start: date, seed: int) -> None:
    """Orders whose units per product and day follow `daily_units`: each day's units split
    into orders of 1 to 3 units."""
    rng = random.Random(f"orders:{seed}")
    order_id = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("id,product_id,quantity,created_date")
        for t, row in enumerate(daily_units(products=products, days=days, start=start, seed=seed)):
            day = f"'{start + timedelta(days=t)}'"
            lines = []
            for p, units in enumerate(row, start=1):
                while units > 0:
                    q = min(units, rng.choice((1, 1, 1, 2, 3)))
                    units -= q
                    order_id += 1
                    lines.append(f"\n{order_id},{p},{q},{day}")
            fh.write("".join(lines))
        fh.write("\n")


# --- a marketplace's long tail -----------------------------------------------------------

MARKETPLACE_CATEGORIES = 74
# Weekday multipliers, Monday first: busier at the start of the week and the weekend.
MARKET_WEEK = [1.15, 1.1, 1.05, 1.0, 0.95, 0.8, 0.95]


def _market_season(day: date, off: set[date]) -> float:
    """How busy a day is, beside its weekday: Black Friday's week, December before
    Christmas, holidays."""
    factor = 1.0
    if day.month == 11 and 20 <= day.day <= 30:
        factor = 2.2 if day.weekday() == 4 and day.day >= 23 else 1.4
    elif day.month == 12 and day.day <= 22:
        factor = 1.25
    if day in off:
        factor *= 0.6
    return factor


def marketplace_products(*, count: int, seed: int) -> list[tuple[int, str, str]]:
    """(product_id, category, price) for each product: categories by a Zipf law."""
    rng = random.Random(f"market-products:{seed}")
    weights = [1 / (k + 1) ** 1.1 for k in range(MARKETPLACE_CATEGORIES)]
    names = [f"Category {k + 1:02d}" for k in range(MARKETPLACE_CATEGORIES)]
    out = []
    for product_id in range(1, count + 1):
        category = rng.choices(names, weights)[0]
        cents = round(rng.lognormvariate(4.3, 0.9) * 100)
        out.append((product_id, category, f"{max(cents, 190) / 100:.2f}"))
    return out


def marketplace_sales(*, products: int, days: int, start: date, seed: int) -> list[list[int]]:
    """Per product, the day offsets of its sales (one entry per order line)."""
    rng = random.Random(f"market-sales:{seed}")
    off = set().union(*(holidays_of(y) for y in range(start.year, start.year + days // 365 + 2)))
    busy = [
        MARKET_WEEK[(start + timedelta(days=t)).weekday()]
        * _market_season(start + timedelta(days=t), off)
        for t in range(days)
    ]
    peak = max(busy)
    sales: list[list[int]] = []
    for _ in range(products):
        # A fifth listed before the first day; the rest launched as the shop grows (a
        # uniform draw to the power 0.65: more launches later).
        launch = -rng.randrange(1, 365) if rng.random() < 0.2 else int(days * rng.random() ** 0.65)
        # Sales over the product's life: mostly a few, a heavy tail of best sellers.
        lifetime = rng.lognormvariate(0.8, 1.3)
        fade = rng.uniform(7, 120)  # days over which its rate falls by e
        count = poisson(rng, lifetime * peak / 1.05)
        days_sold = []
        for _ in range(count):
            t = launch + int(rng.expovariate(1 / fade))
            if 0 <= t < days and rng.random() < busy[t] / peak:
                days_sold.append(t)
        sales.append(sorted(days_sold))
    return sales


def write_marketplace(out: Path, *, products: int, days: int, start: date, seed: int) -> None:
    catalogue = marketplace_products(count=products, seed=seed)
    with (out / "products.csv").open("w", encoding="utf-8", newline="") as fh:
        fh.write("id,name,category,price\n")
        fh.writelines(f"{p},Product_{p},{c},{price}\n" for p, c, price in catalogue)
    lines = []
    rng = random.Random(f"market-orders:{seed}")
    for product_id, days_sold in enumerate(
        marketplace_sales(products=products, days=days, start=start, seed=seed), start=1
    ):
        for t in days_sold:
            lines.append((t, product_id, rng.choice((1, 1, 1, 1, 1, 1, 1, 2, 2, 3))))
    lines.sort()
    with (out / "orders.csv").open("w", encoding="utf-8", newline="") as fh:
        fh.write("id,product_id,quantity,created_date\n")
        fh.writelines(
            f"{i},{p},{q},'{start + timedelta(days=t)}'\n"
            for i, (t, p, q) in enumerate(lines, start=1)
        )


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
    parser.add_argument(
        "--demand",
        choices=("uniform", "realistic", "marketplace"),
        default="uniform",
        help="realistic: seasonal, trending, intermittent demand; marketplace: a long tail"
        " of 74 categories with launches (see above)",
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    if args.products < 1 or args.orders < 0 or args.days < 1:
        parser.error("--products and --days must be at least 1, --orders at least 0")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.demand == "marketplace":
        write_marketplace(
            args.out, products=args.products, days=args.days, start=args.start, seed=args.seed
        )
        return
    write_products(args.out / "products.csv", count=args.products, seed=args.seed)
    if args.demand == "realistic":
        write_realistic_orders(
            args.out / "orders.csv",
            products=args.products,
            days=args.days,
            start=args.start,
            seed=args.seed,
        )
        return
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
