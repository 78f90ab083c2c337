"""Forecast runs, their per-product figures and the predicted demand they serve."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, MappedColumn, mapped_column

from app.choices import JobStatus
from app.db.base import Base, identity_key, one_of, set_on_insert


class ForecastRun(Base):
    """One forecast run: what it read (`data_until`, the uploads it saw), how far it got."""

    __tablename__ = "forecast_runs"
    __table_args__ = (
        sa.CheckConstraint(one_of("status", JobStatus), name="status_known"),
        sa.CheckConstraint("horizon BETWEEN 1 AND 365", name="horizon_range"),
        sa.CheckConstraint(
            "(status = 'running') = (finished_at IS NULL)", name="finished_when_done"
        ),
        # The latest succeeded run: what every read serves.
        sa.Index(
            "ix_forecast_runs_succeeded",
            "run_id",
            postgresql_where=sa.text("status = 'succeeded'"),
        ),
    )

    run_id: Mapped[int] = identity_key()
    status: Mapped[str] = mapped_column(sa.String(16), server_default=JobStatus.RUNNING.value)
    started_at: Mapped[dt.datetime] = set_on_insert()
    finished_at: Mapped[dt.datetime | None]
    data_until: Mapped[dt.date | None]
    horizon: Mapped[int] = mapped_column(sa.Integer)
    engine: Mapped[str] = mapped_column(sa.String(16), server_default="local")
    products: Mapped[int] = mapped_column(sa.Integer, server_default=sa.text("0"))
    progress: Mapped[float] = mapped_column(server_default=sa.text("0"))
    # Seconds per model and step, and how many products each model serves.
    models: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=sa.text("'{}'::jsonb"))
    accuracy: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=sa.text("'[]'::jsonb")
    )
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # What the run is doing, in words ("backtest window 2 of 3: 812 products"); `done` at
    # the end, the last one reached when it failed.
    stage: Mapped[str | None] = mapped_column(sa.Text)
    # Orders the run's series left out: dated after the day it ran, or before its history.
    left_out: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # The uploads the run's snapshot saw: the highest id, and those still running then
    # (an orders upload that changed rows and is not among what it saw makes it stale).
    seen_upload_id: Mapped[int] = mapped_column(sa.BigInteger, server_default=sa.text("0"))
    running_uploads: Mapped[list[int]] = mapped_column(
        sa.ARRAY(sa.BigInteger), server_default=sa.text("'{}'::bigint[]")
    )


def _run_id() -> MappedColumn[int]:
    """The run a row belongs to, deleted with it."""
    return mapped_column(sa.BigInteger, sa.ForeignKey("forecast_runs.run_id", ondelete="CASCADE"))


class ForecastProduct(Base):
    """Per run and product: the model served and its backtest figures."""

    __tablename__ = "forecast_products"
    __table_args__ = (sa.PrimaryKeyConstraint("run_id", "product_id"),)

    run_id: Mapped[int] = _run_id()
    product_id: Mapped[int] = mapped_column(sa.Integer)
    model: Mapped[str] = mapped_column(sa.String(32))
    history_days: Mapped[int] = mapped_column(sa.Integer)
    windows: Mapped[int] = mapped_column(sa.Integer)
    mae: Mapped[float | None]
    rmse: Mapped[float | None]
    mase: Mapped[float | None]
    seasonal_naive_mase: Mapped[float | None]
    coverage_80: Mapped[float | None]
    coverage_95: Mapped[float | None]


# The interval columns of a forecast day: each bound inside the next wider one.
_INTERVALS_ORDERED = (
    "0 <= lo_95 AND lo_95 <= lo_80 AND lo_80 <= quantity AND quantity <= hi_80 AND hi_80 <= hi_95"
)


class _Intervals:
    """A forecast day's units and their 80 % and 95 % intervals. Declarative places a
    mixin's columns after the table's own; those marked `sort_order=1` come after these."""

    quantity: Mapped[float]
    lo_80: Mapped[float]
    hi_80: Mapped[float]
    lo_95: Mapped[float]
    hi_95: Mapped[float]


class PredictedProductDemand(_Intervals, Base):
    """The assessment's table: per run, product and forecast day, units and intervals."""

    __tablename__ = "predicted_product_demand"
    __table_args__ = (
        sa.PrimaryKeyConstraint("run_id", "product_id", "date"),
        sa.CheckConstraint(_INTERVALS_ORDERED, name="intervals_ordered"),
    )

    run_id: Mapped[int] = _run_id()
    product_id: Mapped[int] = mapped_column(sa.Integer)
    date: Mapped[dt.date]
    model: Mapped[str] = mapped_column(sa.String(32), sort_order=1)


class PredictedLevelDemand(_Intervals, Base):
    """Per run, level (`total`, `category`), key (the category; '' for the total) and
    forecast day: the level's own forecast, reconciled, and what of it no product's
    forecast holds (`unallocated`)."""

    __tablename__ = "predicted_level_demand"
    __table_args__ = (
        sa.PrimaryKeyConstraint("run_id", "level", "key", "date"),
        sa.CheckConstraint("level IN ('total', 'category')", name="level_known"),
        sa.CheckConstraint(
            f"{_INTERVALS_ORDERED} AND 0 <= unallocated AND unallocated <= quantity + 1e-9",
            name="intervals_ordered",
        ),
    )

    run_id: Mapped[int] = _run_id()
    level: Mapped[str] = mapped_column(sa.String(16))
    key: Mapped[str] = mapped_column(sa.Text)
    date: Mapped[dt.date]
    unallocated: Mapped[float] = mapped_column(sort_order=1)
    model: Mapped[str] = mapped_column(sa.String(64), sort_order=1)
