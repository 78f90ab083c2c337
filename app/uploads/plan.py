"""What an upload will do, decided once into a frozen value; what it is doing, in one
object passed along.

`Plan` is settled when the file's rows are staged: by then the path they took, the
header's layout and what the file's ids proved are known, and every statement that
judges, loads and books the upload is a function of the plan alone
(`app.uploads.sql.statements(plan)` prints them). `UploadRun` carries the connection, the
upload's id, its progress and its counts.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import IO, TYPE_CHECKING, Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from app.uploads.dialect import Dialect
from app.uploads.models import OnConflict, UploadKind
from app.uploads.rules import RULES, TEXT_ID_RULES, Rules
from app.uploads.tabular import TabularLimits

if TYPE_CHECKING:
    from app.uploads.summarizer import Summarizer


class StagingPath(StrEnum):
    """How the data rows reached staging."""

    FAST = "fast"  # PostgreSQL's COPY parsed the CSV itself
    CAREFUL = "careful"  # Python's csv module parsed it (ragged rows, odd bytes)


@dataclass(frozen=True)
class Plan:
    kind: UploadKind
    on_conflict: OnConflict
    path: StagingPath
    # The kind's columns the file has (required and optional) in the order the file has
    # them, and the lines the header spans.
    order: tuple[str, ...]
    header_lines: int
    width: int  # columns in the header
    # How the rows are written: the delimiter of the staged text, the decimal separator
    # prices may use, an explicit date format (and, for the report, format and encoding).
    dialect: Dialect = field(default_factory=Dialect)
    # Whether a stored row has an id in the file's id range (if not, no stored row is met).
    stored_in_range: bool = True
    # Whether no id occurs twice in the file (then no sort looks for later occurrences).
    unique_ids: bool = False
    # Whether a summarizer sums the new orders on a second connection (summarizer.py).
    sum_aside: bool = False
    # Whether ids may be text (`?ids=text`): codes beside integer keys (rules.TEXT_ID_RULES).
    text_ids: bool = False
    # Whether the orders' foreign key is checked by the judging join, the per-row
    # trigger skipped for the insert (only a role that may set session_replication_role).
    keys_by_set: bool = False

    @property
    def rules(self) -> Rules:
        """The rules the plan's rows meet: the kind's, with text ids if asked."""
        return (TEXT_ID_RULES if self.text_ids else RULES)[self.kind]

    @property
    def columns(self) -> tuple[str, ...]:
        """The kind's columns the file has, required then optional, in the kind's order:
        the fields staged as text and checked."""
        return tuple(name for name in RULES[self.kind].columns if name in self.order)

    @property
    def has(self) -> frozenset[str]:
        """The optional columns the file has."""
        return frozenset(self.order) & frozenset(RULES[self.kind].optional)

    @property
    def update(self) -> bool:
        return self.on_conflict is OnConflict.UPDATE

    @property
    def fast(self) -> bool:
        return self.path is StagingPath.FAST

    @property
    def sort_occurrences(self) -> bool:
        """Whether a later occurrence of an id must be looked for: unless the file's ids
        are unique and none is stored (a stored one is met by its first occurrence)."""
        return not (self.unique_ids and not self.stored_in_range)


@dataclass
class UploadProgress:
    """What an upload has read so far; written to its row while it runs."""

    bytes_received: int = 0
    records_seen: int = 0
    sha256: Any = field(default_factory=hashlib.sha256)


@dataclass
class Counts:
    """What the judging did with the rows."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    by_code: dict[str, int] = field(default_factory=dict)
    units: int = 0  # of the inserted orders
    whole: bool = False  # every row passed, inserted without judging each (orders)
    offset: str | None = None  # its date-times in the zone's one offset (`fixed_offset`)

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged + self.rejected

    def add(self, action: str, code: str | None, rows: int, units: int = 0) -> None:
        if action == "reject":
            self.rejected += rows
            self.by_code[code or "unknown"] = rows
        elif action == "insert":
            self.inserted, self.units = rows, units
        elif action == "update":
            self.updated = rows
        else:
            self.unchanged = rows


class PhaseClock:
    """Seconds spent in each phase of an upload, for the log."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + now - self._last
        self._last = now

    def __str__(self) -> str:
        return " ".join(f"{name} {seconds:.2f}s" for name, seconds in self.laps.items())


@dataclass(frozen=True)
class UploadLimits:
    """The settings an upload runs under (see app/config.py)."""

    max_bytes: int
    work_mem: str
    summarizer_min_rows: int
    tabular: TabularLimits = field(default_factory=TabularLimits)
    timezone: str = "America/Sao_Paulo"  # BUSINESS_TIMEZONE


@dataclass
class UploadRun:
    """One upload while it runs: its connection (asyncpg, inside the upload's
    transaction), id, progress, counts and clock."""

    engine: AsyncEngine
    conn: asyncpg.Connection
    upload_id: int
    kind: UploadKind
    on_conflict: OnConflict
    limits: UploadLimits
    spool: IO[bytes]
    dialect: Dialect | None = None  # once known, for the report of a failed upload too
    progress: UploadProgress = field(default_factory=UploadProgress)
    counts: Counts = field(default_factory=Counts)
    clock: PhaseClock = field(default_factory=PhaseClock)
    summarizer: Summarizer | None = None
