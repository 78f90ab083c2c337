"""The dashboard's tests use the read API's fixtures: the reference data loaded through
the API, USD at the assessment's rate from a fake provider; and the forecasting tests'
realistic demand for the forecast panel. The layout and chart tests share one Chromium
per module."""

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright

from tests.analytics.conftest import reference
from tests.dashboard.test_browser import CHROMIUM, CHROMIUM_ARGS
from tests.forecasting.conftest import realistic

__all__ = ["realistic", "reference"]


@pytest.fixture(scope="module")
async def chromium() -> AsyncIterator[Browser]:
    """Headless Chromium (Debian's), one per test module."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        await browser.close()
