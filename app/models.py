"""Every table, imported in one place so that Alembic sees the whole metadata."""

from app.analytics.models import DailySales, ProductDailySales, ProductSales
from app.catalog.models import Product
from app.db import metadata
from app.forecasting.models import ForecastProduct, ForecastRun, PredictedProductDemand
from app.fx.models import FxRate
from app.orders.models import Order
from app.uploads.models import Reject, Upload

__all__ = [
    "DailySales",
    "ForecastProduct",
    "ForecastRun",
    "FxRate",
    "Order",
    "PredictedProductDemand",
    "Product",
    "ProductDailySales",
    "ProductSales",
    "Reject",
    "Upload",
    "metadata",
]
