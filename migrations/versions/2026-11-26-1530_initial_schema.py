"""Initial schema: products, orders, uploads, rejects, FX rates and the sales rollups.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 15:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "daily_sales",
        sa.Column("created_date", sa.Date(), nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("revenue_brl", sa.Numeric(), nullable=False),
        sa.CheckConstraint(
            "orders > 0 AND quantity > 0 AND revenue_brl >= 0", name=op.f("ck_daily_sales_positive")
        ),
        sa.PrimaryKeyConstraint("created_date", name=op.f("pk_daily_sales")),
    )
    op.create_table(
        "fx_rates",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("base", sa.String(length=3), nullable=False),
        sa.Column("quote", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("rate_date", sa.Date(), nullable=False),
        sa.Column("rate", sa.Numeric(precision=24, scale=12), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "base ~ '^[A-Z]{3}$' AND quote ~ '^[A-Z]{3}$'", name=op.f("ck_fx_rates_currency_codes")
        ),
        sa.CheckConstraint("kind IN ('latest', 'historical')", name=op.f("ck_fx_rates_kind_known")),
        sa.CheckConstraint("rate > 0", name=op.f("ck_fx_rates_rate_positive")),
        sa.PrimaryKeyConstraint(
            "source", "base", "quote", "kind", "rate_date", name=op.f("pk_fx_rates")
        ),
    )
    op.create_table(
        "products",
        sa.Column("product_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=False),
        sa.Column("price", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("btrim(category) <> ''", name=op.f("ck_products_category_not_blank")),
        sa.CheckConstraint("btrim(name) <> ''", name=op.f("ck_products_name_not_blank")),
        sa.CheckConstraint("price >= 0", name=op.f("ck_products_price_not_negative")),
        sa.CheckConstraint(
            "product_id BETWEEN 1 AND 2147483647", name=op.f("ck_products_product_id_range")
        ),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_products")),
    )
    op.create_index(op.f("ix_products_category"), "products", ["category"], unique=False)
    op.create_table(
        "uploads",
        sa.Column("upload_id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("filename", sa.Text(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="running", nullable=False),
        sa.Column("on_conflict", sa.String(length=16), server_default="reject", nullable=False),
        sa.Column("rows_total", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("rows_inserted", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("rows_updated", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("rows_unchanged", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("rows_rejected", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("bytes_received", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "rejects_by_code",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "warnings",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("columns", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("error", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(status = 'running') = (finished_at IS NULL)",
            name=op.f("ck_uploads_finished_when_done"),
        ),
        sa.CheckConstraint("kind IN ('products', 'orders')", name=op.f("ck_uploads_kind_known")),
        sa.CheckConstraint(
            "on_conflict IN ('reject', 'update')", name=op.f("ck_uploads_on_conflict_known")
        ),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed')", name=op.f("ck_uploads_status_known")
        ),
        sa.CheckConstraint(
            "rows_total >= 0 AND rows_inserted >= 0 AND rows_updated >= 0 AND rows_unchanged >= 0 AND rows_rejected >= 0 AND bytes_received >= 0",
            name=op.f("ck_uploads_counts_not_negative"),
        ),
        sa.PrimaryKeyConstraint("upload_id", name=op.f("pk_uploads")),
    )
    op.create_index(op.f("ix_uploads_started_at"), "uploads", ["started_at"], unique=False)
    op.create_table(
        "orders",
        sa.Column("order_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("created_date", sa.Date(), nullable=False),
        sa.CheckConstraint("order_id >= 1", name=op.f("ck_orders_order_id_positive")),
        sa.CheckConstraint(
            "quantity BETWEEN 1 AND 2147483647", name=op.f("ck_orders_quantity_range")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.product_id"], name=op.f("fk_orders_product_id_products")
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_orders")),
    )
    op.create_index(op.f("ix_orders_created_date"), "orders", ["created_date"], unique=False)
    op.create_index(op.f("ix_orders_product_id"), "orders", ["product_id"], unique=False)
    op.create_table(
        "product_daily_sales",
        sa.Column("created_date", sa.Date(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "orders > 0 AND quantity > 0", name=op.f("ck_product_daily_sales_positive")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.product_id"],
            name=op.f("fk_product_daily_sales_product_id_products"),
        ),
        sa.PrimaryKeyConstraint("created_date", "product_id", name=op.f("pk_product_daily_sales")),
    )
    op.create_index(
        "ix_product_daily_sales_product_id_created_date",
        "product_daily_sales",
        ["product_id", "created_date"],
        unique=False,
    )
    op.create_table(
        "product_sales",
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("orders > 0 AND quantity > 0", name=op.f("ck_product_sales_positive")),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.product_id"],
            name=op.f("fk_product_sales_product_id_products"),
        ),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_product_sales")),
    )
    op.create_table(
        "rejects",
        sa.Column("upload_id", sa.BigInteger(), nullable=False),
        sa.Column("row_number", sa.BigInteger(), nullable=False),
        sa.Column("error_code", sa.String(length=32), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=False),
        sa.Column("fields", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.CheckConstraint(
            "error_code IN ('missing_value', 'invalid_integer', 'invalid_decimal', 'invalid_date', 'out_of_range', 'too_long', 'unknown_product', 'duplicate_in_file', 'conflict', 'wrong_field_count')",
            name=op.f("ck_rejects_error_code_known"),
        ),
        sa.ForeignKeyConstraint(
            ["upload_id"],
            ["uploads.upload_id"],
            name=op.f("fk_rejects_upload_id_uploads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("upload_id", "row_number", name=op.f("pk_rejects")),
    )


def downgrade() -> None:
    op.drop_table("rejects")
    op.drop_table("product_sales")
    op.drop_index(
        "ix_product_daily_sales_product_id_created_date", table_name="product_daily_sales"
    )
    op.drop_table("product_daily_sales")
    op.drop_index(op.f("ix_orders_product_id"), table_name="orders")
    op.drop_index(op.f("ix_orders_created_date"), table_name="orders")
    op.drop_table("orders")
    op.drop_index(op.f("ix_uploads_started_at"), table_name="uploads")
    op.drop_table("uploads")
    op.drop_index(op.f("ix_products_category"), table_name="products")
    op.drop_table("products")
    op.drop_table("fx_rates")
    op.drop_table("daily_sales")
