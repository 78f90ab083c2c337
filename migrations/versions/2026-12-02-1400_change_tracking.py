"""Change tracking for the warehouse feeds: the upload that last wrote each product and
order, a commit-ordered change number per upload, the transaction that last wrote each
FX rate, and the log of feed reads (`syncs`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 13:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_XID = "(pg_current_xact_id()::text::bigint)"


def upgrade() -> None:
    op.execute("CREATE SEQUENCE change_seq AS bigint")
    op.add_column("uploads", sa.Column("change_seq", sa.BigInteger(), nullable=True))
    op.create_index(op.f("ix_uploads_change_seq"), "uploads", ["change_seq"], unique=True)
    # integer: it fills the 4 bytes of padding an orders tuple already has (no wider rows).
    op.add_column("orders", sa.Column("upload_id", sa.Integer(), nullable=True))
    op.create_index(
        op.f("ix_orders_upload_id"),
        "orders",
        ["upload_id"],
        postgresql_using="brin",
        postgresql_with={"autosummarize": "on"},
    )
    op.add_column("products", sa.Column("upload_id", sa.BigInteger(), nullable=True))
    op.create_index(op.f("ix_products_upload_id"), "products", ["upload_id"])
    op.add_column(
        "fx_rates",
        sa.Column(
            "changed_xid", sa.BigInteger(), server_default=sa.text(CURRENT_XID), nullable=False
        ),
    )
    op.create_table(
        "syncs",
        sa.Column("sync_id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("feed", sa.String(length=32), nullable=False),
        sa.Column("cursor_from", sa.Text(), nullable=True),
        sa.Column("cursor_to", sa.Text(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=True),
        sa.Column(
            "read_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("sync_id", name=op.f("pk_syncs")),
    )
    op.create_index(op.f("ix_syncs_read_at"), "syncs", ["read_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_syncs_read_at"), table_name="syncs")
    op.drop_table("syncs")
    op.drop_column("fx_rates", "changed_xid")
    op.drop_index(op.f("ix_products_upload_id"), table_name="products")
    op.drop_column("products", "upload_id")
    op.drop_index(op.f("ix_orders_upload_id"), table_name="orders")
    op.drop_column("orders", "upload_id")
    op.drop_index(op.f("ix_uploads_change_seq"), table_name="uploads")
    op.drop_column("uploads", "change_seq")
    op.execute("DROP SEQUENCE change_seq")
