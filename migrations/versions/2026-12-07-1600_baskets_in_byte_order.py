"""Baskets in byte order (issue 27, item 6): `basket_days.basket` compares with the "C"
collation.

A big upload with baskets adds hundreds of thousands of basket days, each an entry in the
table's key. Under the database's language collation every comparison of two baskets in
that key calls the C library's `strcoll`; under "C" it compares bytes. With the new days
arriving in key order too (the summarizer sorts them), the COPY of a third of a million
of them took a third of the time in a trial. Baskets are ids: equality is the same under
both collations, and no answer orders by them.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 16:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute('ALTER TABLE basket_days ALTER COLUMN basket TYPE varchar(64) COLLATE "C"')


def downgrade() -> None:
    op.execute('ALTER TABLE basket_days ALTER COLUMN basket TYPE varchar(64) COLLATE "default"')
