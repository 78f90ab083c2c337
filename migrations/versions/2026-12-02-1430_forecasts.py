"""Demand forecasting: forecast_runs, forecast_products and predicted_product_demand.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 13:45:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "forecast_runs",
        sa.Column("run_id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="running", nullable=False),
        sa.Column(
            "started_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("data_until", sa.Date(), nullable=True),
        sa.Column("horizon", sa.Integer(), nullable=False),
        sa.Column("engine", sa.String(length=16), server_default="local", nullable=False),
        sa.Column("products", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("progress", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "models",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "accuracy",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("error", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("seen_upload_id", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "running_uploads",
            postgresql.ARRAY(sa.BigInteger()),
            server_default=sa.text("'{}'::bigint[]"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed')",
            name=op.f("ck_forecast_runs_status_known"),
        ),
        sa.CheckConstraint(
            "horizon BETWEEN 1 AND 365", name=op.f("ck_forecast_runs_horizon_range")
        ),
        sa.CheckConstraint(
            "(status = 'running') = (finished_at IS NULL)",
            name=op.f("ck_forecast_runs_finished_when_done"),
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_forecast_runs")),
    )
    op.create_index(
        "ix_forecast_runs_succeeded",
        "forecast_runs",
        ["run_id"],
        postgresql_where=sa.text("status = 'succeeded'"),
    )
    op.create_table(
        "forecast_products",
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=32), nullable=False),
        sa.Column("history_days", sa.Integer(), nullable=False),
        sa.Column("windows", sa.Integer(), nullable=False),
        sa.Column("mae", sa.Double(), nullable=True),
        sa.Column("rmse", sa.Double(), nullable=True),
        sa.Column("mase", sa.Double(), nullable=True),
        sa.Column("seasonal_naive_mase", sa.Double(), nullable=True),
        sa.Column("coverage_80", sa.Double(), nullable=True),
        sa.Column("coverage_95", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["forecast_runs.run_id"],
            name=op.f("fk_forecast_products_run_id_forecast_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "product_id", name=op.f("pk_forecast_products")),
    )
    op.create_table(
        "predicted_product_demand",
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("quantity", sa.Double(), nullable=False),
        sa.Column("lo_80", sa.Double(), nullable=False),
        sa.Column("hi_80", sa.Double(), nullable=False),
        sa.Column("lo_95", sa.Double(), nullable=False),
        sa.Column("hi_95", sa.Double(), nullable=False),
        sa.Column("model", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "0 <= lo_95 AND lo_95 <= lo_80 AND lo_80 <= quantity AND quantity <= hi_80"
            " AND hi_80 <= hi_95",
            name=op.f("ck_predicted_product_demand_intervals_ordered"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["forecast_runs.run_id"],
            name=op.f("fk_predicted_product_demand_run_id_forecast_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "run_id", "product_id", "date", name=op.f("pk_predicted_product_demand")
        ),
    )


def downgrade() -> None:
    op.drop_table("predicted_product_demand")
    op.drop_table("forecast_products")
    op.drop_index("ix_forecast_runs_succeeded", table_name="forecast_runs")
    op.drop_table("forecast_runs")
