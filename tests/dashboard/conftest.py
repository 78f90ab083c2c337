"""The dashboard's tests use the read API's fixtures: the reference data loaded through
the API, USD at the assessment's rate from a fake provider; and the forecasting tests'
realistic demand for the forecast panel."""

from tests.analytics.conftest import api, fake_fx, reference
from tests.forecasting.conftest import realistic

__all__ = ["api", "fake_fx", "realistic", "reference"]
