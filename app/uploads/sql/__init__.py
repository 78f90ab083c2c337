"""The SQL of an upload, by purpose: `staging` (the file's rows as COPY left them),
`checks` (each row's first problem, from the rule table), `problems` (a rule's SQL, and
the conflict verdict), `orders`, `judging` and `products` (judging and loading), `rejects`,
`bookkeeping` (the upload's row, locks, settings) and `reads` (reports, history,
rejects). Statements are built from a `Plan` and the modules'
own constants; every value from a file travels as data, through COPY or a parameter.

Each temporary table has one owner, which creates it and is the only module whose SQL
names it (tests/uploads/test_plan.py checks this); `TEMP_TABLES` lists them all.
"""

from __future__ import annotations

from app.analytics import rollups
from app.uploads.models import UploadKind
from app.uploads.plan import Plan
from app.uploads.sql import checks, orders, products, rejects, staging

TEMP_TABLES: dict[str, str] = {
    **dict.fromkeys(staging.TABLES, "app.uploads.sql.staging"),
    **dict.fromkeys(checks.TABLES, "app.uploads.sql.checks"),
    **dict.fromkeys(orders.TABLES, "app.uploads.sql.orders"),
    **dict.fromkeys(products.TABLES, "app.uploads.sql.products"),
    **rollups.TEMP_TABLES,
}


def statements(plan: Plan) -> list[tuple[str, str]]:
    """The statements a plan runs once its rows are staged, named, in order (those that
    depend on counts, such as the rejects, included as they would run)."""
    out: list[tuple[str, str]] = []
    if checks.via_typed(plan):
        out += [("checks.create_typed", checks.create_typed(plan))]
        out += [("checks.fill_typed", checks.fill_typed(plan))]
        if plan.text_ids:
            out += [("checks.resolve_codes", sql) for sql in checks.resolve_codes(plan)]
    out += [("checks.id_range", checks.id_range(plan))]
    out += _orders(plan) if plan.kind is UploadKind.ORDERS else _products(plan)
    return out


def _orders(plan: Plan) -> list[tuple[str, str]]:
    """An orders plan's statements after its id range."""
    out = [
        ("orders.lock_referenced_products", orders.lock_referenced_products(plan)),
        ("orders.create_checked", orders.CREATE_CHECKED),
        ("rollups.open_deltas", rollups.CREATE_DELTAS),
        ("rollups.open_basket_deltas", rollups.CREATE_BASKET_DELTAS),
    ]
    if orders.may_load_whole(plan):  # if every product named is stored
        out += [
            ("orders.create_whole_dates", orders.create_whole_dates(plan)),
            ("orders.analyze_whole_dates", orders.ANALYZE_WHOLE_DATES),
        ]
        if plan.sum_aside:  # the checks split with the summarizer (`RowChecks`)
            out += [
                ("orders.select_whole_dates (sent to it)", orders.SELECT_WHOLE_DATES),
                *(
                    [("orders.create_whole_prices to fill (its checks taken)", fill)]
                    if (fill := orders.create_whole_prices(plan, to_fill=True))
                    else []
                ),
                ("orders.values_pass (its checks taken)", orders.values_pass(plan)),
            ]
        out += [
            *(
                [
                    ("orders.create_whole_prices", prices),
                    ("orders.analyze_whole_prices", orders.ANALYZE_WHOLE_PRICES),
                ]
                if (prices := orders.create_whole_prices(plan))
                else []
            ),
            ("orders.verdict", orders.verdict(plan)),
            ("orders.load_whole (if whole)", orders.load_whole(plan)),
        ]
        if not plan.sum_aside:
            if cents := orders.money_in_cents(plan):
                out += [
                    ("orders.money_in_cents", cents),
                    ("orders.sum_whole (if whole, in cents)", orders.sum_whole(plan, cents=True)),
                ]
            out += [("orders.sum_whole (if whole)", orders.sum_whole(plan))]
    out += [
        ("orders.load (if not whole)", orders.load(plan)),
        ("rejects.insert", rejects.insert(plan)),
        ("orders.update_stored", orders.UPDATE_STORED),
    ]
    if plan.sum_aside:
        out += [("orders.sum_new (if the summarizer failed)", orders.sum_new(plan))]
    return out


def _products(plan: Plan) -> list[tuple[str, str]]:
    """A products plan's statements after its id range."""
    return [
        ("products.create_checked", products.CREATE_CHECKED),
        ("products.classify", products.classify(plan)),
        ("products.count_actions", products.COUNT_ACTIONS),
        ("rejects.insert", rejects.insert(plan)),
        ("products.insert", products.INSERT),
        ("products.update_names", products.UPDATE_NAMES),
        ("products.save_old_prices", products.SAVE_OLD_PRICES),
        *(("products.set_prices", statement) for statement in products.SET_PRICES),
        ("rollups.open_deltas", rollups.CREATE_DELTAS),
        ("rollups.open_basket_deltas", rollups.CREATE_BASKET_DELTAS),
        ("products.price_change_deltas", products.PRICE_CHANGE_DELTAS),
    ]


def printed(plan: Plan) -> str:
    """The plan and its statements as text (compared with files kept in tests/)."""
    lines = [f"-- {plan}"]
    for name, sql in statements(plan):
        body = "\n".join(line.rstrip() for line in sql.strip().splitlines())
        lines += ["", f"-- {name}", body + ";"]
    return "\n".join(lines) + "\n"
