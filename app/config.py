"""Settings, read once from the environment and `.env` (SPEC section 1)."""

from __future__ import annotations

import re
import zoneinfo
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, HttpUrl, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class FxProvider(StrEnum):
    FREECURRENCYAPI = "freecurrencyapi"
    ECB = "ecb"


class FxMode(StrEnum):
    LATEST = "latest"
    ORDER_DATE = "order_date"


class Access(StrEnum):
    """Who may read: anyone who reaches the port, or holders of a key."""

    PUBLIC = "public"
    KEY = "key"


class ForecastEngine(StrEnum):
    """Where a forecast run fits the statistical models: in the process, or on Dask."""

    LOCAL = "local"
    DASK = "dask"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


GiB = 1024**3


class Settings(BaseSettings):
    """Every knob of the service. Invalid values fail at start, not at first use."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: SecretStr | None = Field(
        default=None, description="postgresql://… of an existing server; unset: embedded"
    )
    orderlens_data_dir: Path = Field(
        default=Path(".orderlens"), description="where the embedded server keeps its data"
    )
    api_key: SecretStr | None = Field(
        default=None, description="key for X-API-Key; unset: generated and printed"
    )
    # Unset means public; `orderlens serve` then warns when bound beyond loopback.
    read_access: Access | None = None
    # Comma-separated keys that may read but not write (READ_ACCESS=key).
    read_api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    metrics_access: Access = Access.PUBLIC
    fx_provider: FxProvider | None = None
    fx_api_key: SecretStr | None = None
    fx_api_url: HttpUrl = HttpUrl("https://api.freecurrencyapi.com/v1")
    fx_cache_ttl_seconds: Annotated[int, Field(ge=0)] = 3600
    fx_mode: FxMode = FxMode.LATEST
    max_upload_bytes: Annotated[int, Field(gt=0)] = GiB
    # Orders uploads of at least this many new rows are summed on a second connection
    # while the first inserts them (uploads/summarizer.py). Below 100,000 rows the
    # summarizer's own staging and connection cost about what they save.
    summarizer_min_rows: Annotated[int, Field(ge=1)] = 100_000
    # PostgreSQL's work_mem for an upload's transaction: sorts and hashes over a million
    # staged rows then stay in memory.
    upload_work_mem: Annotated[str, Field(pattern=r"^[1-9][0-9]*(kB|MB|GB)$")] = "256MB"
    # A workbook (.xlsx) is a zip: what all its members may unpack to, and the cells a
    # sheet may span from A1 to its last cell (calamine holds them all, ~32 bytes each).
    xlsx_max_unpacked_bytes: Annotated[int, Field(gt=0)] = GiB
    xlsx_max_cells: Annotated[int, Field(gt=0)] = 20_000_000
    # Workbooks and Parquet files are read by a process of their own (uploads/tabular/):
    # its address space, CPU seconds, and the wall seconds the upload waits for it. Past
    # any of them the upload is 413 `too_large`; the service is not affected.
    parser_max_memory_bytes: Annotated[int, Field(ge=512 * 2**20)] = 4 * GiB
    parser_max_cpu_seconds: Annotated[int, Field(ge=1)] = 300
    parser_max_seconds: Annotated[float, Field(gt=0)] = 600.0
    # Connections kept open to the database (as many again are opened under load), and
    # how long a request waits for one before it is 503 `busy`.
    db_pool_size: Annotated[int, Field(ge=2, le=1000)] = 10
    db_pool_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 10.0
    # The FX service's own pool: requests waiting for a rate must not starve its fetch.
    fx_pool_size: Annotated[int, Field(ge=1, le=100)] = 4
    # Memory for read answers kept per data version (app/answers), per process; 0 keeps
    # none. One answer takes at most an eighth of it; bigger ones stream every time.
    answer_cache_bytes: Annotated[int, Field(ge=0, le=64 * GiB)] = 64 * 2**20
    # Forecast runs kept (with their predictions); older ones are deleted after a run.
    forecast_keep_runs: Annotated[int, Field(ge=1, le=1000)] = 10
    forecast_engine: ForecastEngine = ForecastEngine.LOCAL
    # Days of history a run's series hold, ending at data_until; older orders are left out
    # (and counted in the run). Three years by default: two seasons of a year, and a bound
    # on what a single stray date (an order in 1900) could make a run zero-fill.
    forecast_history_days: Annotated[int, Field(ge=56, le=3660)] = 1096
    # Seconds the global LightGBM model's fits may take in a run, all windows together: it
    # trains on the best sellers, as many as fit (the long tail gets the statistical models).
    forecast_time_budget_seconds: Annotated[float, Field(gt=0, le=86400)] = 60.0
    # tcp://host:8786 of an existing Dask scheduler (FORECAST_ENGINE=dask).
    dask_scheduler_address: str | None = None
    # The shop's time zone (IANA name): an order's date-time becomes its date there
    # (2024-11-06T01:30:00Z is 2024-11-05 in America/Sao_Paulo); a time without an offset
    # is read as this zone's local time. docs/UPLOADS.md, "Dates and date-times".
    business_timezone: str = "America/Sao_Paulo"
    # GET /freshness and its gauges: the data is stale when no upload succeeded for this
    # long, a warehouse consumer when its last finished sync is older (docs/OPERATIONS.md,
    # "Freshness"). A day: a shop that uploads daily, a pipeline that runs hourly.
    freshness_sla_seconds: Annotated[int, Field(ge=1)] = 86_400
    # Alerts (docs/OPERATIONS.md, "Alerts"): comma-separated Apprise URLs (slack://…,
    # mailto://…, json://host/path, ~100 services); unset: alerts are only recorded
    # (GET /alerts). Secret: they hold tokens.
    alert_urls: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # How long one alert's delivery may take, every URL together.
    alert_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0
    # A demand spike: a product's units on a day at least this many times its mean over
    # the 28 days before, and at least ALERT_SPIKE_MIN_UNITS units.
    alert_spike_factor: Annotated[Decimal, Field(gt=1, max_digits=6, decimal_places=2)] = Decimal(3)
    alert_spike_min_units: Annotated[int, Field(ge=1)] = 10
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    # Worker processes of `orderlens serve`; they share the database, the FX cache and
    # the metrics (docs/OPERATIONS.md, "Several workers").
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.TEXT
    cors_origins: list[str] = Field(default_factory=list)

    @field_validator("fx_provider", mode="before")
    @classmethod
    def _blank_provider_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("read_access", mode="before")
    @classmethod
    def _blank_access_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("read_api_keys", "alert_urls", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator("business_timezone")
    @classmethod
    def _iana_zone(cls, value: str) -> str:
        # The name reaches SQL as a literal (AT TIME ZONE): only an IANA name's characters.
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*", value):
            raise ValueError(f"BUSINESS_TIMEZONE {value!r} is not an IANA time zone name")
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"BUSINESS_TIMEZONE {value!r} is not a known time zone") from error
        return value

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        url = value.get_secret_value().strip()
        scheme = url.split("://", 1)[0]
        if scheme not in {"postgres", "postgresql", "postgresql+asyncpg"}:
            raise ValueError("DATABASE_URL must be a postgresql:// URL")
        return SecretStr(url)

    @field_validator("api_key", "fx_api_key")
    @classmethod
    def _blank_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        return value

    @model_validator(mode="after")
    def _default_provider(self) -> Settings:
        # SPEC 1: freecurrencyapi when a key is configured, the offline ECB rates otherwise.
        if self.fx_provider is None:
            self.fx_provider = FxProvider.FREECURRENCYAPI if self.fx_api_key else FxProvider.ECB
        if self.fx_provider is FxProvider.FREECURRENCYAPI and self.fx_api_key is None:
            raise ValueError("FX_PROVIDER=freecurrencyapi needs FX_API_KEY")
        return self

    @model_validator(mode="after")
    def _dask_needs_a_scheduler(self) -> Settings:
        if self.forecast_engine is ForecastEngine.DASK and not self.dask_scheduler_address:
            raise ValueError("FORECAST_ENGINE=dask needs DASK_SCHEDULER_ADDRESS")
        return self

    @property
    def reads_need_key(self) -> bool:
        return self.read_access is Access.KEY

    @property
    def embedded(self) -> bool:
        """True when the service runs its own PostgreSQL from the wheel."""
        return self.database_url is None


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests build their own `Settings` instead)."""
    return Settings()
