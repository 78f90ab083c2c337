"""Every table, imported in one place so that Alembic sees the whole metadata."""

from app.alerts.models import Alert
from app.analytics.models import (
    DailySales,
    GrowthLeader,
    ProductDailySales,
    ProductSales,
    UnitsMonthToDate,
    UnitsThroughMonth,
)
from app.answers.models import DataVersion
from app.catalog.models import Product, ProductPrice
from app.db.base import Base
from app.exports.models import Instance, Sync
from app.forecasting.models import (
    ForecastProduct,
    ForecastRun,
    PredictedLevelDemand,
    PredictedProductDemand,
)
from app.fx.models import FxRate
from app.orders.models import BasketDay, Order
from app.uploads.models import Reject, Upload

metadata = Base.metadata

__all__ = [
    "Alert",
    "BasketDay",
    "DailySales",
    "DataVersion",
    "ForecastProduct",
    "ForecastRun",
    "FxRate",
    "GrowthLeader",
    "Instance",
    "Order",
    "PredictedLevelDemand",
    "PredictedProductDemand",
    "Product",
    "ProductDailySales",
    "ProductPrice",
    "ProductSales",
    "Reject",
    "Sync",
    "UnitsMonthToDate",
    "UnitsThroughMonth",
    "Upload",
    "metadata",
]
