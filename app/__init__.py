"""Orderlens: order and product analytics over CSV uploads, on PostgreSQL."""

from sqlmodel import SQLModel

__version__ = "0.1.0"

# Explicit constraint names, so migrations and error details can refer to them. Set here,
# before any model module runs, because names are fixed when a constraint joins a table.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
