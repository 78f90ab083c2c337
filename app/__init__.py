"""Orderlens: order and product analytics over CSV uploads, on PostgreSQL."""

__version__ = "0.7.5"
