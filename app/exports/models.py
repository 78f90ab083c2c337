"""The log of feed reads: the refresh timestamps a warehouse's SLA checks read."""

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Identity, String, Text, func
from sqlmodel import Field, SQLModel


class Sync(SQLModel, table=True):
    __tablename__ = "syncs"

    sync_id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=False), primary_key=True)
    )
    feed: str = Field(sa_column=Column(String(32), nullable=False))
    cursor_from: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    cursor_to: str = Field(sa_column=Column(Text, nullable=False))
    rows: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    read_at: datetime | None = Field(
        default=None,
        sa_column=Column(
            DateTime(timezone=True), nullable=False, server_default=func.now(), index=True
        ),
    )
    finished_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
