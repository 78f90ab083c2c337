"""The dashboard's tests use the read API's fixtures: the reference data loaded through
the API, USD at the assessment's rate from a fake provider."""

from tests.analytics.conftest import api, fake_fx, reference

__all__ = ["api", "fake_fx", "reference"]
