"""The log of feed reads: the refresh timestamps a warehouse's SLA checks read."""

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Identity,
    Index,
    LargeBinary,
    String,
    Text,
    func,
    text,
)
from sqlmodel import Field, SQLModel

# A reader's name for itself (`?consumer=`) and the dataset it loads into (`?dataset=`).
MAX_CONSUMER = 64


class Sync(SQLModel, table=True):
    __tablename__ = "syncs"
    # GET /freshness: each consumer's last finished read.
    __table_args__ = (Index("ix_syncs_consumer", "consumer", "dataset", "finished_at"),)

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
    # When the file was sent whole (rows set).
    sent_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    # Sent, and (for a reader that reports, `reports`) committed by its destination.
    finished_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    # SHA-256 of the token a reader that reports its commit (`?report=true`) was given:
    # only that reader can mark the read finished.
    report_digest: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    # Who read (GET /freshness lists each consumer): NULL for a read that gave no name.
    consumer: str | None = Field(
        default=None, sa_column=Column(String(MAX_CONSUMER), nullable=True)
    )
    dataset: str | None = Field(default=None, sa_column=Column(String(MAX_CONSUMER), nullable=True))


class Instance(SQLModel, table=True):
    """This service's id, one row made by its migration: the warehouse dataset a sync
    loads into unless told another (GET /instance), so that two services syncing into
    one warehouse stay apart."""

    __tablename__ = "instance"
    __table_args__ = (CheckConstraint("one", name="one_row"),)

    one: bool = Field(
        default=True, sa_column=Column(Boolean, primary_key=True, server_default=text("true"))
    )
    instance_id: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
