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

from app.choices import Access as Access
from app.choices import ForecastEngine as ForecastEngine
from app.choices import FxMode as FxMode
from app.choices import FxProvider as FxProvider
from app.choices import LogFormat as LogFormat

GiB = 1024**3


class Settings(BaseSettings):
    """Every knob of the service. Invalid values fail at start, not at first use."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Each field's description is its row in docs/CONFIGURATION.md (`make docs` writes the
    # table from them; a test keeps the page equal to it), with `shown` for a default that
    # its value alone does not say.
    database_url: SecretStr | None = Field(
        default=None,
        description="`postgresql://…` of an existing server",
        json_schema_extra={"shown": "unset: embedded server"},
    )
    orderlens_data_dir: Path = Field(
        default=Path(".orderlens"),
        description="where the embedded server and a generated API key live",
    )
    api_key: SecretStr | None = Field(
        default=None,
        description="key required in `X-API-Key` for every write (it also reads)",
        json_schema_extra={
            "shown": "unset: generated once, kept in `ORDERLENS_DATA_DIR/api-key` (mode"
            " 0600), printed by `orderlens serve`"
        },
    )
    read_access: Access | None = Field(
        default=None,
        description="`public` (anyone who reaches the port reads) or `key` (every data read"
        " needs `X-API-Key`: a read key or the write key)",
        json_schema_extra={
            "shown": "unset: `public`, with a warning line at start when `HOST` is not a"
            " loopback address"
        },
    )
    read_api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="comma-separated keys that may read but not write"
    )
    metrics_access: Access = Field(
        default=Access.PUBLIC, description="`/metrics`: `public` or `key`, as `READ_ACCESS`"
    )
    fx_provider: FxProvider | None = Field(
        default=None,
        description="`freecurrencyapi` or `ecb`",
        json_schema_extra={"shown": "`freecurrencyapi` when `FX_API_KEY` is set, else `ecb`"},
    )
    fx_api_key: SecretStr | None = Field(default=None, description="freecurrencyapi key")
    fx_api_url: HttpUrl = Field(
        default=HttpUrl("https://api.freecurrencyapi.com/v1"),
        description="freecurrencyapi base URL",
        json_schema_extra={"shown": "`https://api.freecurrencyapi.com/v1`"},
    )
    fx_cache_ttl_seconds: int = Field(
        default=3600, ge=0, description="how long a latest rate is fresh"
    )
    fx_mode: FxMode = Field(default=FxMode.LATEST, description="`latest` or `order_date`")
    max_upload_bytes: int = Field(
        default=GiB,
        gt=0,
        description="largest accepted upload (and the most text a Parquet file's rows may come to)",
    )
    # Below 100,000 rows the summarizer's own staging and connection cost about what they
    # save (uploads/summarizer.py).
    summarizer_min_rows: int = Field(
        default=100_000,
        ge=1,
        description="orders uploads of at least this many new rows sum their rollups on a"
        " second connection ([why](UPLOADS.md#uploading-csv-files-workbooks-and-parquet))",
    )
    upload_work_mem: str = Field(
        default="256MB",
        pattern=r"^[1-9][0-9]*(kB|MB|GB)$",
        description="PostgreSQL's `work_mem` inside an upload's transaction (sorts and"
        " hashes of a million staged rows stay in memory)",
    )
    xlsx_max_unpacked_bytes: int = Field(
        default=GiB,
        gt=0,
        description="what an `.xlsx` upload's zip may unpack to in all (beyond: 413"
        " `too_large`; a zip bomb)",
    )
    xlsx_max_cells: int = Field(
        default=20_000_000,
        gt=0,
        description="cells a workbook's sheet may span from A1 to its last cell (the reader"
        " holds them all, ~32 bytes each; beyond: 413 `too_large`)",
    )
    # Workbooks and Parquet files are read by a process of their own (uploads/tabular/).
    parser_max_memory_bytes: int = Field(
        default=4 * GiB,
        ge=512 * 2**20,
        description="address space of the process that reads a workbook or Parquet file (at"
        " least 512 MiB; beyond: 413 `too_large`, the service unaffected)",
    )
    parser_max_cpu_seconds: int = Field(
        default=300, ge=1, description="CPU seconds that process may use"
    )
    parser_max_seconds: float = Field(
        default=600.0,
        gt=0,
        description="seconds an upload waits for that process (time its rows wait for the"
        " database not counted)",
    )
    db_pool_size: int = Field(
        default=10,
        ge=2,
        le=1000,
        description="database connections kept open per process (as many again open under load)",
    )
    db_pool_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="how long a request waits for a database connection before 503 `busy`",
    )
    fx_pool_size: int = Field(
        default=4,
        ge=1,
        le=100,
        description="the FX service's own connections, so that requests waiting for a rate"
        " never starve its fetch",
    )
    answer_cache_bytes: int = Field(
        default=64 * 2**20,
        ge=0,
        le=64 * GiB,
        description="memory per process for read answers kept until the data changes"
        " ([Kept answers](API.md#kept-answers-etags-and-freshness)); one answer takes at"
        " most an eighth of it, bigger ones are streamed each time; `0` keeps none",
    )
    forecast_keep_runs: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="forecast runs kept with their predictions; older ones are deleted"
        " after each run",
    )
    forecast_engine: ForecastEngine = Field(
        default=ForecastEngine.LOCAL,
        description="where a forecast run fits the statistical models: `local` (in the"
        " process) or `dask`",
    )
    # Three years by default: two seasons of a year, and a bound on what a single stray
    # date (an order in 1900) could make a run zero-fill.
    forecast_history_days: int = Field(
        default=1096,
        ge=56,
        le=3660,
        description="days of history a forecast run reads, ending at its `data_until`"
        " (56–3660); older orders are left out and counted in the run's `left_out`",
    )
    forecast_time_budget_seconds: float = Field(
        default=60.0,
        gt=0,
        le=86400,
        description="seconds the global LightGBM model's fits may take in a run, all"
        " backtest windows and the final fit together: it trains on the best sellers, as"
        " many as a timed fit on the first of them says the budget holds; the rest get the"
        " statistical models",
    )
    dask_scheduler_address: str | None = Field(
        default=None,
        description="`tcp://host:8786` of an existing Dask scheduler (needed by"
        " `FORECAST_ENGINE=dask`)",
    )
    business_timezone: str = Field(
        default="America/Sao_Paulo",
        description="the shop's IANA time zone: an order's date-time with an offset becomes"
        ' its date there, one without is a local time there (docs/UPLOADS.md, "Dates and'
        ' date-times"); a name that is not a known zone stops the service at start',
    )
    # A day: a shop that uploads daily, a pipeline that runs hourly.
    freshness_sla_seconds: int = Field(
        default=86_400,
        ge=1,
        description="`GET /freshness` and its gauges: the data is stale when no upload"
        " succeeded for this long, a warehouse consumer when its last finished feed read is"
        ' older (docs/OPERATIONS.md, "Freshness")',
        json_schema_extra={"shown": "`86400` (a day)"},
    )
    alert_urls: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="comma-separated [Apprise](https://github.com/caronc/apprise) URLs the"
        " alerts go to (`slack://…`, `mailto://…`, `json://host/path`, ~100 services);"
        " unset: alerts are only recorded at `GET /alerts` (docs/OPERATIONS.md,"
        ' "Alerts"). Secret: they hold tokens',
        json_schema_extra={"shown": "unset"},
    )
    alert_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="how long one alert's delivery may take, every URL together; past it"
        " the alert is recorded as not delivered",
    )
    alert_spike_factor: Decimal = Field(
        default=Decimal(3),
        gt=1,
        max_digits=6,
        decimal_places=2,
        description="a demand spike: a product's units on a day at least this many times"
        " its mean over the 28 days before",
    )
    alert_spike_min_units: int = Field(
        default=10, ge=1, description="…and at least this many units"
    )
    host: str = Field(default="127.0.0.1", description="where `orderlens serve` listens")
    port: int = Field(default=8000, ge=1, le=65535, description="…on this port")
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="worker processes of `orderlens serve` (`--workers N` wins), 1–64; they"
        " share the database, the FX cache and the metrics",
    )
    reuse_port: bool = Field(
        default=True,
        description="with several workers, each listens on a socket of its own"
        " (SO_REUSEPORT, Linux) and the kernel spreads connections evenly over them;"
        " (each worker is then a session of its own, too, as PostgreSQL's backends are);"
        " `false`: one socket shared, whose waiting connections the first worker awake"
        " accepts all",
    )
    log_level: str = Field(default="INFO", description="logging level")
    log_format: LogFormat = Field(default=LogFormat.TEXT, description="`text` or `json`")
    cors_origins: list[str] = Field(
        default_factory=list,
        description="JSON list of browser origins allowed; empty: CORS off",
        json_schema_extra={"shown": "`[]`"},
    )

    @field_validator("fx_provider", "read_access", mode="before")
    @classmethod
    def _blank_choice_is_unset(cls, value: object) -> object:
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


# docs/CONFIGURATION.md's table of settings is written from the fields (`make docs`).
TABLE_START = "<!-- settings: written by `make docs` from app/config.py; edit the fields there -->"
TABLE_END = "<!-- end of settings -->"


def settings_table() -> str:
    """The markdown table of every setting: its variable, description and default."""
    rows = ["| variable | meaning | default |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        shown = extra.get("shown") or _shown(field.get_default(call_default_factory=True))
        rows.append(f"| `{name.upper()}` | {field.description} | {shown} |")
    return "\n".join(rows)


def _shown(default: object) -> str:
    if default is None:
        return "unset"
    if default == []:
        return "empty"
    if isinstance(default, StrEnum):
        return f"`{default.value}`"
    if isinstance(default, float | Decimal) and default == int(default):
        default = int(default)
    if isinstance(default, int) and default >= 2**20 and default % 2**20 == 0:
        size = f"{default // GiB} GiB" if default % GiB == 0 else f"{default // 2**20} MiB"
        return f"`{default}` ({size})"
    return f"`{default}`"


def write_table(page: Path) -> bool:
    """Put the settings table between the page's markers; True if the page changed."""
    text = page.read_text(encoding="utf-8")
    head, rest = text.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    new = f"{head}{TABLE_START}\n{settings_table()}\n{TABLE_END}{tail}"
    if new == text:
        return False
    page.write_text(new, encoding="utf-8")
    return True


if __name__ == "__main__":
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/CONFIGURATION.md")
    print(f"{target}: {'written' if write_table(target) else 'unchanged'}")
