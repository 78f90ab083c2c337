"""Date-times written in the business zone's own offset, read by their date part.

A date-time with an offset is read as its date in BUSINESS_TIMEZONE (`rules.zone_date`:
a cast to `timestamptz`, then into the zone), about 0.9 µs a row on each of a big
upload's two connections. When the zone keeps one UTC offset through every day of the
file, a value written with that very offset (`2024-11-06T23:30:00-03:00` in São Paulo
since 2019) is a local time there already: its date part is its date. So, per file:

- `FIXED_OFFSET` finds the offset, as `±HH:MM`, if the zone has the same one at every
  quarter hour from the day before the file's first date part to two days after its
  last (every instant such a value can name; tzdata never changes an offset twice
  within a quarter hour), the file spans at most `MAX_DAYS` and has at least as many
  rows as those quarter hours (each costs about what a row's cast does: a small file
  spread over years is cast as before), and the offset is whole minutes; otherwise none.
- `settle` runs it over the first and last date parts a verdict found and sets it for
  the transaction (`SETTING`); `checks.fast_day` then reads a value that ends in it by
  its date part (`written_in`). Without the setting (other uploads, or none found)
  nothing changes: the value is cast as before.

A value with more than six decimals of a second is always cast: the cast rounds it to
microseconds, and `23:59:59.9999995` becomes the next day.
"""

from __future__ import annotations

import datetime
import re

import asyncpg

from app.uploads.plan import Plan

SETTING = "orderlens.zone_offset"
SET_LOCAL = f"SELECT set_config('{SETTING}', $1, true)"
# Beyond this many days the quarter hours to look at cost more than the cast saves.
MAX_DAYS = 3660
QUARTERS_A_DAY = 96
# `YYYY-MM-DDTHH:MM:SS.ffffff±HH:MM`: the longest value read by its date part.
_LONGEST = 32
_DAY_PART = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


# The zone's one offset (`±HH:MM`) at every quarter hour from the day before $1 to two
# days after $2 (dates as text: asyncpg would send 9999-12-31 as infinity), in zone $3;
# NULL if it has more than one, or seconds.
FIXED_OFFSET = """
SELECT CASE WHEN count(DISTINCT seconds) = 1 AND min(seconds) % 60 = 0 THEN
    CASE WHEN min(seconds) < 0 THEN '-' ELSE '+' END
    || to_char(abs(min(seconds)) / 3600, 'FM00') || ':'
    || to_char(abs(min(seconds)) % 3600 / 60, 'FM00') END
FROM (
    SELECT extract(epoch FROM (t AT TIME ZONE $3::text) - (t AT TIME ZONE 'UTC'))::integer
        AS seconds
    FROM generate_series(
        ($1::text::date - 1)::timestamp AT TIME ZONE 'UTC',
        ($2::text::date + 2)::timestamp AT TIME ZONE 'UTC',
        interval '15 minutes'
    ) t
) quarters
"""


def written_in(raw: str) -> str:
    """SQL over a quick date-time `raw` (`checks.fast_day`'s): whether it ends in the
    offset `SETTING` holds, with at most six decimals of a second (then its date part is
    its date in the zone). False when the setting is empty or unset."""
    offset = f"(SELECT current_setting('{SETTING}', true))"
    return f"({offset} <> '' AND octet_length({raw}) <= {_LONGEST} AND right({raw}, 6) = {offset})"


def span(
    first: str | None, last: str | None, rows: int
) -> tuple[datetime.date, datetime.date] | None:
    """The first and last days of a file of `rows` rows whose smallest and largest dates
    (as text, in byte order) are `first` and `last`, if both start with a real date
    `YYYY-MM-DD` at most `MAX_DAYS` apart, and the quarter hours `FIXED_OFFSET` looks at
    are no more than the rows; None otherwise (a date part that is not one sorts apart
    from the rest, and such a file is not read by its offset)."""
    days = []
    for text in (first, last):
        if text is None or not _DAY_PART.fullmatch(text[:10]):
            return None
        try:
            days.append(datetime.date.fromisoformat(text[:10]))
        except ValueError:
            return None
    apart = (days[1] - days[0]).days
    if apart > MAX_DAYS or (apart + 3) * QUARTERS_A_DAY > rows:
        return None
    return days[0], days[1]


async def settle(
    conn: asyncpg.Connection, plan: Plan, first: str | None, last: str | None, rows: int
) -> str | None:
    """Find the zone's one offset through the days of a file of `rows` rows (`first`,
    `last`: its smallest and largest dates, `checks.date_span`) and set it for this
    transaction; the offset, or None (nothing set)."""
    days = span(first, last, rows)
    if days is None:
        return None
    first_day, last_day = (day.isoformat() for day in days)
    offset: str | None = await conn.fetchval(
        FIXED_OFFSET, first_day, last_day, plan.dialect.timezone
    )
    await take(conn, offset)
    return offset


async def take(conn: asyncpg.Connection, offset: str | None) -> None:
    """Set an offset the other connection found (`settle`) for this transaction."""
    if offset is not None:
        await conn.execute(SET_LOCAL, offset)
