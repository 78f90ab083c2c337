"""The alerts raised: each event once, and whether it reached ALERT_URLS."""

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Identity, String, Text, func, text
from sqlmodel import Field, SQLModel


class Alert(SQLModel, table=True):
    __tablename__ = "alerts"

    alert_id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=False), primary_key=True)
    )
    event: str = Field(sa_column=Column(String(32), nullable=False))
    subject: str = Field(sa_column=Column(String(200), nullable=False))
    # What makes two alerts the same one: raised again, an event is not sent again.
    dedupe_key: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    message: str = Field(sa_column=Column(Text, nullable=False))
    raised_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    # When delivery was tried (null: not yet, or no ALERT_URLS), and whether every URL took it.
    sent_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    delivered: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=text("false"))
    )
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
