"""Key parts: what a kept answer hangs on besides the data version, supplied by the
domains that know it.

An answer is kept per data version. Some answers also hang on something that changes
without the data moving: answers in USD on the FX rate, which is cached and expires. The
domain that serves such a thing registers the dependency its endpoints use, with the key
part it stands for; every cached route whose dependencies include that dependency then
keeps its answers under the part's current state as well (`route.py`). This package
imports no domain: FX registers itself (app/fx/deps.py).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import Request
from fastapi.dependencies.models import Dependant


class KeyPart(Protocol):
    """Something answers hang on besides the data version."""

    def current(self) -> Hashable:
        """What an answer computed now would hang on, read without asking anyone (no
        I/O): a different value is a different answer."""
        ...

    @property
    def unsettled(self) -> int:
        """A count that moves whenever something other than what `current` says is
        handed out (a value being replaced, a fallback): an answer computed while it
        moved may mix two states, and is sent but not kept."""
        ...


@dataclass(frozen=True)
class Registered:
    """A dependency whose routes' answers hang on a key part, and how to get the part."""

    dependency: Callable[..., Any]
    part: Callable[[Request], KeyPart]


_REGISTERED: list[Registered] = []


def register(dependency: Callable[..., Any], part: Callable[[Request], KeyPart]) -> None:
    """Answers of cached routes that depend on `dependency` (directly or through other
    dependencies) hang on `part(request)` too. Call it where the dependency is defined,
    so that it is registered before any route can depend on it. Registering again is a
    no-op."""
    if not any(r.dependency is dependency for r in _REGISTERED):
        _REGISTERED.append(Registered(dependency, part))


def parts_of(dependant: Dependant) -> tuple[Callable[[Request], KeyPart], ...]:
    """The key parts a route's answers hang on, in the order they were registered."""
    return tuple(r.part for r in _REGISTERED if _depends_on(dependant, r.dependency))


def _depends_on(dependant: Dependant, call: Callable[..., Any]) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)
