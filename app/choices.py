"""The choices the service and its command line share, in the standard library only:
the command line imports them without pydantic or SQLAlchemy (`orderlens --help` stays
fast), the settings and the upload and forecast models from here too."""

from __future__ import annotations

from enum import StrEnum


class UploadKind(StrEnum):
    PRODUCTS = "products"
    ORDERS = "orders"


class OnConflict(StrEnum):
    REJECT = "reject"
    UPDATE = "update"


class FxMode(StrEnum):
    LATEST = "latest"
    ORDER_DATE = "order_date"


class JobStatus(StrEnum):
    """Where an upload or a forecast run stands."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class ForecastEngine(StrEnum):
    """Where a forecast run fits the statistical models: in the process, or on Dask."""

    LOCAL = "local"
    DASK = "dask"


class FxProvider(StrEnum):
    FREECURRENCYAPI = "freecurrencyapi"
    ECB = "ecb"


class Access(StrEnum):
    """Who may read: anyone who reaches the port, or holders of a key."""

    PUBLIC = "public"
    KEY = "key"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
