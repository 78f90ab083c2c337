"""The data version: one row, bumped by every statement that changes what reads answer.

Statement-level triggers on `products`, `orders` and the rollups (migration 0005) set
`version` to the next value of `data_version_seq` in the writer's own transaction, so a
reader sees a new version exactly when the change it stands for commits, and never
sees one reused (the sequence is not restarted by TRUNCATE; an empty table reads as 0).
"""

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Column, DateTime, text
from sqlmodel import Field, SQLModel


class DataVersion(SQLModel, table=True):
    __tablename__ = "data_version"
    __table_args__ = (CheckConstraint("id", name="one_row"),)

    id: bool = Field(
        default=True, sa_column=Column(Boolean, primary_key=True, server_default=text("true"))
    )
    version: int = Field(sa_column=Column(BigInteger, nullable=False))
    changed_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()"))
    )
