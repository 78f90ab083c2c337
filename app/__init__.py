"""Orderlens: order and product analytics over CSV uploads, on PostgreSQL."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

__version__ = "0.5.0"

# Explicit constraint names, so migrations and error details can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _name_constraints(sqlmodel: ModuleType) -> None:
    sqlmodel.SQLModel.metadata.naming_convention = NAMING_CONVENTION


class _NameConstraintsOnImport:  # a MetaPathFinder (importlib.abc costs 20 ms)
    """Sets the naming convention the moment `sqlmodel` is imported, before any model
    module can define a table (names are fixed when a constraint joins a table).

    Importing sqlmodel here instead would cost every `import app…` most of a second
    (SQLAlchemy and pydantic), `orderlens --help` included."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "sqlmodel":
            return None
        sys.meta_path.remove(self)  # once, and not while looking for the real spec
        spec = importlib.util.find_spec(fullname)
        loader = spec.loader if spec else None
        if spec is None or loader is None:
            return spec
        exec_module = loader.exec_module

        def exec_then_name(module: ModuleType) -> None:
            exec_module(module)
            _name_constraints(module)

        loader.exec_module = exec_then_name  # type: ignore[method-assign]
        return spec


if "sqlmodel" in sys.modules:
    _name_constraints(sys.modules["sqlmodel"])
else:
    sys.meta_path.insert(0, _NameConstraintsOnImport())
