"""The growth leaders (`growth_leaders`): per day and basis (calendar, previous sale),
the LEADERS_PER_DAY products whose units grew most, kept at ingest so that top growth
reads a few rows per day.

Owns `leader_candidates` (the leaders among the cells an upload makes), `leader_days`,
`leader_lists` and `leader_redo` (the days' new lists). `SUMMARIZE` ranks the candidates,
`WRITE` makes the lists again, `SHIPPED` is what a summarizer sends of them.
"""

from __future__ import annotations

from app.analytics.rollups.sales import CELLS

TABLES = ("leader_candidates", "leader_days", "leader_lists", "leader_redo")

# Leaders kept per day and basis in `growth_leaders`. Not a setting: it shapes stored
# rows (a change needs them rebuilt, as migration 0005 builds them). Top growth with a
# `limit` up to this reads the leaders; above it, every product-day of the period.
LEADERS_PER_DAY = 25

CREATE = (
    """
CREATE TEMP TABLE leader_candidates (
    basis text, created_date date, product_id integer, quantity bigint, previous_date date,
    previous_quantity bigint, growth bigint, rank smallint, fresh boolean
) ON COMMIT DROP
""",
)

# The growth leaders among the cells made, per day and basis, ranked: those of the day's
# new leaders that come from these cells are among them (`WRITE` merges them with the
# leaders kept from untouched cells). `fresh`: the day had no cells, hence no leaders,
# before this upload, so all its cells are here and its candidates are its leaders, whole:
# they are written as they are (a summarizer COPYs them straight into growth_leaders).
# Ranked per basis, by day: a sort keyed on the basis's text as well took three times as
# long (the 1.3 million growths of a million new orders: 2.0 s against 0.75 s).


def _ranked(basis: str, previous_date: str, previous_quantity: str, only: str = "") -> str:
    """One basis's growths of the cells made, the first LEADERS_PER_DAY of each day."""
    return f"""
    SELECT * FROM (
        SELECT '{basis}' AS basis, created_date, product_id, quantity,
            {previous_date} AS previous_date, {previous_quantity} AS previous_quantity,
            quantity - {previous_quantity} AS growth,
            row_number() OVER (
                PARTITION BY created_date ORDER BY quantity - {previous_quantity} DESC, product_id
            ) AS rank
        FROM {CELLS} WHERE orders > 0{only}
    ) ranked WHERE rank <= {LEADERS_PER_DAY}"""


LEADER_CANDIDATES = f"""
INSERT INTO leader_candidates
SELECT r.basis, r.created_date, r.product_id, r.quantity, r.previous_date, r.previous_quantity,
    r.growth, r.rank, k.created_date IS NULL AS fresh
FROM ({_ranked("calendar", "created_date - 1", "prev_quantity")}
    UNION ALL{
    _ranked(
        "previous_sale", "prev_sale_date", "prev_sale_quantity", " AND prev_sale_date IS NOT NULL"
    )
}
) r
LEFT JOIN growth_leaders k
    ON k.basis = 'calendar' AND k.created_date = r.created_date AND k.rank = 1
"""

SUMMARIZE = (LEADER_CANDIDATES,)

# The growth leaders of the days the cells fall on, made again. A day's new leaders are the
# best of its kept leaders whose cell was not remade and the candidates. That is exact
# unless the day had a full list whose remade cells fell back: then cells below its old
# last leader, never kept, may belong, and the day is ranked again from all its cells
# (`leader_redo`: one index probe per product and such day).
LEADER_COLUMNS = (
    "basis",
    "created_date",
    "rank",
    "product_id",
    "quantity",
    "previous_date",
    "previous_quantity",
    "growth",
)
_LEADER_LIST = ", ".join(LEADER_COLUMNS)

WRITE = (
    # Days without leaders before: their candidates, whole (none left after a summarizer,
    # which sent them straight).
    f"""
INSERT INTO growth_leaders ({_LEADER_LIST})
SELECT {_LEADER_LIST} FROM leader_candidates WHERE fresh
""",
    f"""
CREATE TEMP TABLE leader_days ON COMMIT DROP AS
SELECT created_date FROM {CELLS} UNION SELECT created_date FROM leader_candidates
EXCEPT SELECT created_date FROM leader_candidates WHERE fresh
""",
    f"""
CREATE TEMP TABLE leader_lists ON COMMIT DROP AS
WITH pool AS (
    SELECT l.basis, l.created_date, l.product_id, l.quantity, l.previous_date,
        l.previous_quantity, l.growth
    FROM growth_leaders l JOIN leader_days d ON d.created_date = l.created_date
    WHERE NOT EXISTS (
        SELECT 1 FROM {CELLS} c
        WHERE c.product_id = l.product_id AND c.created_date = l.created_date
    )
    UNION ALL
    SELECT basis, created_date, product_id, quantity, previous_date, previous_quantity, growth
    FROM leader_candidates WHERE NOT fresh
)
SELECT basis, created_date, rank, product_id, quantity, previous_date, previous_quantity,
    growth
FROM (
    SELECT pool.*, row_number() OVER (
        PARTITION BY basis, created_date ORDER BY growth DESC, product_id) AS rank
    FROM pool
) ranked
WHERE rank <= {LEADERS_PER_DAY}
""",
    f"""
CREATE TEMP TABLE leader_redo ON COMMIT DROP AS
SELECT o.basis, o.created_date
FROM growth_leaders o JOIN leader_days d ON d.created_date = o.created_date
WHERE o.rank = {LEADERS_PER_DAY} AND NOT EXISTS (
    SELECT 1 FROM leader_lists n
    WHERE n.basis = o.basis AND n.created_date = o.created_date
        AND n.rank = {LEADERS_PER_DAY} AND (-n.growth, n.product_id) <= (-o.growth, o.product_id)
)
""",
    """
DELETE FROM leader_lists n USING leader_redo r
WHERE n.basis = r.basis AND n.created_date = r.created_date
""",
    f"""
INSERT INTO leader_lists
SELECT basis, created_date, rank, product_id, quantity, previous_date, previous_quantity,
    growth
FROM (
    SELECT g.*, row_number() OVER (
        PARTITION BY basis, created_date ORDER BY growth DESC, product_id) AS rank
    FROM (
        SELECT r.basis, s.created_date, s.product_id, s.quantity,
            CASE WHEN r.basis = 'calendar' THEN s.created_date - 1 ELSE s.prev_sale_date END
                AS previous_date,
            CASE WHEN r.basis = 'calendar' THEN s.prev_quantity ELSE s.prev_sale_quantity END
                AS previous_quantity,
            CASE WHEN r.basis = 'calendar' THEN s.calendar_growth ELSE s.sale_growth END
                AS growth
        FROM leader_redo r
        CROSS JOIN product_sales ps
        JOIN product_daily_sales s
            ON s.product_id = ps.product_id AND s.created_date = r.created_date
    ) g
    WHERE growth IS NOT NULL
) ranked
WHERE rank <= {LEADERS_PER_DAY}
""",
    """
MERGE INTO growth_leaders t
USING leader_lists n
    ON t.basis = n.basis AND t.created_date = n.created_date AND t.rank = n.rank
WHEN MATCHED AND (t.product_id, t.quantity, t.previous_date, t.previous_quantity, t.growth)
    IS DISTINCT FROM (n.product_id, n.quantity, n.previous_date, n.previous_quantity, n.growth)
    THEN UPDATE SET product_id = n.product_id, quantity = n.quantity,
        previous_date = n.previous_date, previous_quantity = n.previous_quantity,
        growth = n.growth
WHEN NOT MATCHED THEN INSERT
    (basis, created_date, rank, product_id, quantity, previous_date, previous_quantity, growth)
    VALUES (n.basis, n.created_date, n.rank, n.product_id, n.quantity, n.previous_date,
        n.previous_quantity, n.growth)
""",
    """
DELETE FROM growth_leaders t USING leader_days d
WHERE t.created_date = d.created_date AND NOT EXISTS (
    SELECT 1 FROM leader_lists n
    WHERE n.basis = t.basis AND n.created_date = t.created_date AND n.rank = t.rank
)
""",
)

# What a summarizer sends of these (as `sales.SENT_EARLY` and `sales.SHIPPED`): the leaders
# of days that had none, straight into `growth_leaders` by COPY as soon as they are made;
# the other candidates at the end, for `WRITE`.
SENT_EARLY = (
    (
        f"SELECT {_LEADER_LIST} FROM leader_candidates WHERE fresh",
        "growth_leaders",
        LEADER_COLUMNS,
    ),
)
SHIPPED = (
    (
        "SELECT * FROM leader_candidates WHERE NOT fresh",
        "leader_candidates",
        (
            "basis",
            "created_date",
            "product_id",
            "quantity",
            "previous_date",
            "previous_quantity",
            "growth",
            "rank",
            "fresh",
        ),
    ),
)
