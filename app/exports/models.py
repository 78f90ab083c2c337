"""The log of feed reads: the refresh timestamps a warehouse's SLA checks read."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, identity_key, set_on_insert

# A reader's name for itself (`?consumer=`) and the dataset it loads into (`?dataset=`).
MAX_CONSUMER = 64


class Sync(Base):
    __tablename__ = "syncs"
    # GET /freshness: each consumer's last finished read.
    __table_args__ = (sa.Index("ix_syncs_consumer", "consumer", "dataset", "finished_at"),)

    sync_id: Mapped[int] = identity_key()
    feed: Mapped[str] = mapped_column(sa.String(32))
    cursor_from: Mapped[str | None] = mapped_column(sa.Text)
    cursor_to: Mapped[str] = mapped_column(sa.Text)
    rows: Mapped[int | None] = mapped_column(sa.BigInteger)
    read_at: Mapped[datetime] = set_on_insert(index=True)
    # When the file was sent whole (rows set).
    sent_at: Mapped[datetime | None]
    # Sent, and (for a reader that reports, `reports`) committed by its destination.
    finished_at: Mapped[datetime | None]
    # SHA-256 of the token a reader that reports its commit (`?report=true`) was given:
    # only that reader can mark the read finished.
    report_digest: Mapped[bytes | None]
    # Who read (GET /freshness lists each consumer): NULL for a read that gave no name.
    consumer: Mapped[str | None] = mapped_column(sa.String(MAX_CONSUMER))
    dataset: Mapped[str | None] = mapped_column(sa.String(MAX_CONSUMER))


class Instance(Base):
    """This service's id, one row made by its migration: the warehouse dataset a sync
    loads into unless told another (GET /instance), so that two services syncing into
    one warehouse stay apart."""

    __tablename__ = "instance"
    __table_args__ = (sa.CheckConstraint("one", name="one_row"),)

    one: Mapped[bool] = mapped_column(primary_key=True, server_default=sa.text("true"))
    instance_id: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = set_on_insert()
