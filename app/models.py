"""Every table, imported in one place so that Alembic sees the whole metadata."""

from app.alerts.models import Alert
from app.analytics.models import DailySales, GrowthLeader, ProductDailySales, ProductSales
from app.answers.models import DataVersion
from app.catalog.models import Product, ProductPrice
from app.db import metadata
from app.exports.models import Sync
from app.forecasting.models import ForecastProduct, ForecastRun, PredictedProductDemand
from app.fx.models import FxRate
from app.orders.models import BasketDay, Order
from app.uploads.models import Reject, Upload

__all__ = [
    "Alert",
    "BasketDay",
    "DailySales",
    "DataVersion",
    "ForecastProduct",
    "ForecastRun",
    "FxRate",
    "GrowthLeader",
    "Order",
    "PredictedProductDemand",
    "Product",
    "ProductDailySales",
    "ProductPrice",
    "ProductSales",
    "Reject",
    "Sync",
    "Upload",
    "metadata",
]
