"""Forecast runs, their per-product figures and the predicted demand they serve."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class ForecastRun(SQLModel, table=True):
    """One forecast run: what it read (`data_until`, the uploads it saw), how far it got."""

    __tablename__ = "forecast_runs"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'succeeded', 'failed')", name="status_known"),
        CheckConstraint("horizon BETWEEN 1 AND 365", name="horizon_range"),
        CheckConstraint("(status = 'running') = (finished_at IS NULL)", name="finished_when_done"),
        # The latest succeeded run: what every read serves.
        Index(
            "ix_forecast_runs_succeeded",
            "run_id",
            postgresql_where=text("status = 'succeeded'"),
        ),
    )

    run_id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=False), primary_key=True)
    )
    status: str = Field(
        default=RunStatus.RUNNING,
        sa_column=Column(String(16), nullable=False, server_default=RunStatus.RUNNING.value),
    )
    started_at: dt.datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    finished_at: dt.datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    data_until: dt.date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    horizon: int = Field(sa_column=Column(Integer, nullable=False))
    engine: str = Field(
        default="local", sa_column=Column(String(16), nullable=False, server_default="local")
    )
    products: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default=text("0"))
    )
    progress: float = Field(
        default=0.0, sa_column=Column(Double, nullable=False, server_default=text("0"))
    )
    # Seconds per model and step, and how many products each model serves.
    models: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    )
    accuracy: list[dict[str, Any]] = Field(
        default_factory=list,
        sa_column=Column(JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    )
    error: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    # What the run is doing, in words ("backtest window 2 of 3: 812 products"); `done` at
    # the end, the last one reached when it failed.
    stage: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # Orders the run's series left out: dated after the day it ran, or before its history.
    left_out: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    # The uploads the run's snapshot saw: the highest id, and those still running then
    # (an orders upload that changed rows and is not among what it saw makes it stale).
    seen_upload_id: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, server_default=text("0"))
    )
    running_uploads: list[int] = Field(
        default_factory=list,
        sa_column=Column(ARRAY(BigInteger), nullable=False, server_default=text("'{}'::bigint[]")),
    )


class ForecastProduct(SQLModel, table=True):
    """Per run and product: the model served and its backtest figures."""

    __tablename__ = "forecast_products"
    __table_args__ = (PrimaryKeyConstraint("run_id", "product_id"),)

    run_id: int = Field(
        sa_column=Column(
            BigInteger, ForeignKey("forecast_runs.run_id", ondelete="CASCADE"), nullable=False
        )
    )
    product_id: int = Field(sa_column=Column(Integer, nullable=False))
    model: str = Field(sa_column=Column(String(32), nullable=False))
    history_days: int = Field(sa_column=Column(Integer, nullable=False))
    windows: int = Field(sa_column=Column(Integer, nullable=False))
    mae: float | None = Field(default=None, sa_column=Column(Double, nullable=True))
    rmse: float | None = Field(default=None, sa_column=Column(Double, nullable=True))
    mase: float | None = Field(default=None, sa_column=Column(Double, nullable=True))
    seasonal_naive_mase: float | None = Field(default=None, sa_column=Column(Double, nullable=True))
    coverage_80: float | None = Field(default=None, sa_column=Column(Double, nullable=True))
    coverage_95: float | None = Field(default=None, sa_column=Column(Double, nullable=True))


class PredictedProductDemand(SQLModel, table=True):
    """The assessment's table: per run, product and forecast day, units and intervals."""

    __tablename__ = "predicted_product_demand"
    __table_args__ = (
        PrimaryKeyConstraint("run_id", "product_id", "date"),
        CheckConstraint(
            "0 <= lo_95 AND lo_95 <= lo_80 AND lo_80 <= quantity AND quantity <= hi_80"
            " AND hi_80 <= hi_95",
            name="intervals_ordered",
        ),
    )

    run_id: int = Field(
        sa_column=Column(
            BigInteger, ForeignKey("forecast_runs.run_id", ondelete="CASCADE"), nullable=False
        )
    )
    product_id: int = Field(sa_column=Column(Integer, nullable=False))
    date: dt.date = Field(sa_column=Column(Date, nullable=False))
    quantity: float = Field(sa_column=Column(Double, nullable=False))
    lo_80: float = Field(sa_column=Column(Double, nullable=False))
    hi_80: float = Field(sa_column=Column(Double, nullable=False))
    lo_95: float = Field(sa_column=Column(Double, nullable=False))
    hi_95: float = Field(sa_column=Column(Double, nullable=False))
    model: str = Field(sa_column=Column(String(32), nullable=False))


class PredictedLevelDemand(SQLModel, table=True):
    """Per run, level (`total`, `category`), key (the category; '' for the total) and
    forecast day: the level's own forecast, reconciled, and what of it no product's
    forecast holds (`unallocated`)."""

    __tablename__ = "predicted_level_demand"
    __table_args__ = (
        PrimaryKeyConstraint("run_id", "level", "key", "date"),
        CheckConstraint("level IN ('total', 'category')", name="level_known"),
        CheckConstraint(
            "0 <= lo_95 AND lo_95 <= lo_80 AND lo_80 <= quantity AND quantity <= hi_80"
            " AND hi_80 <= hi_95 AND 0 <= unallocated AND unallocated <= quantity + 1e-9",
            name="intervals_ordered",
        ),
    )

    run_id: int = Field(
        sa_column=Column(
            BigInteger, ForeignKey("forecast_runs.run_id", ondelete="CASCADE"), nullable=False
        )
    )
    level: str = Field(sa_column=Column(String(16), nullable=False))
    key: str = Field(sa_column=Column(Text, nullable=False))
    date: dt.date = Field(sa_column=Column(Date, nullable=False))
    quantity: float = Field(sa_column=Column(Double, nullable=False))
    lo_80: float = Field(sa_column=Column(Double, nullable=False))
    hi_80: float = Field(sa_column=Column(Double, nullable=False))
    lo_95: float = Field(sa_column=Column(Double, nullable=False))
    hi_95: float = Field(sa_column=Column(Double, nullable=False))
    unallocated: float = Field(sa_column=Column(Double, nullable=False))
    model: str = Field(sa_column=Column(String(64), nullable=False))
