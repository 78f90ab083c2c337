"""A running sum that stays an integer (issue 27, item 6): `bigint_sum(bigint)`.

PostgreSQL's `sum(bigint)` answers `numeric`, so a window summing a million units row by
row builds a `numeric` for each of them: the running units of a big upload (its
month-to-date rows, the cells' running totals) spent a fifth of their time there.
`bigint_sum` adds with `int8pl`, the `bigint` + operator, and answers `bigint`, as the
columns those sums are stored in are; a total beyond `bigint` fails with "bigint out of
range", as storing it would have. In a moving window it takes rows away with `int8mi`.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 20:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
CREATE AGGREGATE bigint_sum(bigint) (
    SFUNC = int8pl, STYPE = bigint, COMBINEFUNC = int8pl, PARALLEL = SAFE,
    MSFUNC = int8pl, MINVFUNC = int8mi, MSTYPE = bigint
)
"""
    )


def downgrade() -> None:
    op.execute("DROP AGGREGATE bigint_sum(bigint)")
