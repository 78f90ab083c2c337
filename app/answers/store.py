"""Answers kept in memory: whole responses (status 200, body bytes, headers), for the
current data version only, least recently used dropped first, within a byte budget."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

# Bookkeeping per entry beyond its body and headers (key, dict slot, objects), roughly.
ENTRY_OVERHEAD_BYTES = 512


@dataclass(frozen=True)
class Answer:
    """One complete answer, as it is sent again."""

    body: bytes
    headers: tuple[tuple[bytes, bytes], ...]  # raw, without Content-Length
    etag: str
    version: int

    @property
    def size(self) -> int:
        return len(self.body) + sum(len(k) + len(v) for k, v in self.headers) + ENTRY_OVERHEAD_BYTES


class AnswerStore:
    """At most `budget` bytes of answers of one data version. Seeing a newer (or any
    other) version drops every answer of the old one: they can never be served again."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.max_entry = budget // 8  # one answer never takes more than an eighth
        self.version: int | None = None
        self.size = 0
        self._entries: OrderedDict[Hashable, Answer] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, version: int) -> Answer | None:
        self._see(version)
        answer = self._entries.get(key)
        if answer is not None:
            self._entries.move_to_end(key)
        return answer

    def put(self, key: Hashable, answer: Answer) -> bool:
        """Keep `answer` if it is of the current version and fits; True if kept."""
        if answer.version != self.version or answer.size > self.max_entry:
            return False
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= old.size
        self._entries[key] = answer
        self.size += answer.size
        while self.size > self.budget:
            _, dropped = self._entries.popitem(last=False)
            self.size -= dropped.size
        return True

    def _see(self, version: int) -> None:
        if version != self.version:
            self._entries.clear()
            self.size = 0
            self.version = version
