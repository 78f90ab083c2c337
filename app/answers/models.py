"""The data version: one row, bumped by every statement that changes what reads answer.

Statement-level triggers on `products`, `orders` and the rollups (migration 0005) set
`version` to the next value of `data_version_seq` in the writer's own transaction, so a
reader sees a new version exactly when the change it stands for commits, and never
sees one reused (the sequence is not restarted by TRUNCATE; an empty table reads as 0).
"""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class DataVersion(Base):
    __tablename__ = "data_version"
    __table_args__ = (
        sa.CheckConstraint("id", name="one_row"),
        # Never truncated by vacuum: its lock would hold every version read (migration 0022).
        {"postgresql_with": {"vacuum_truncate": "false"}},
    )

    id: Mapped[bool] = mapped_column(primary_key=True, server_default=sa.text("true"))
    version: Mapped[int] = mapped_column(sa.BigInteger)
    changed_at: Mapped[datetime] = mapped_column(server_default=sa.text("now()"))
