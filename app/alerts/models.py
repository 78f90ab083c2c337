"""The alerts raised: each event once, and whether it reached ALERT_URLS."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, identity_key, set_on_insert


class Alert(Base):
    __tablename__ = "alerts"

    alert_id: Mapped[int] = identity_key()
    event: Mapped[str] = mapped_column(sa.String(32))
    subject: Mapped[str] = mapped_column(sa.String(200))
    # What makes two alerts the same one: raised again, an event is not sent again.
    dedupe_key: Mapped[str] = mapped_column(sa.Text, unique=True)
    message: Mapped[str] = mapped_column(sa.Text)
    raised_at: Mapped[datetime] = set_on_insert()
    # When delivery was tried (null: not yet, or no ALERT_URLS), and whether every URL took it.
    sent_at: Mapped[datetime | None]
    delivered: Mapped[bool] = mapped_column(server_default=sa.text("false"))
    error: Mapped[str | None] = mapped_column(sa.Text)
