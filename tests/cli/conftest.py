"""`orderlens forecast` runs on the forecasting tests' realistic demand."""

from tests.forecasting.conftest import realistic

__all__ = ["realistic"]
