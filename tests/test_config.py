import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from app.config import FxMode, FxProvider, Settings


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


# Read by the command line, make or the dbt project, not by the service's settings.
CLIENT_VARIABLES = {
    "ORDERLENS_URL",
    "ORDERLENS_SYNC_TO",
    "ORDERLENS_SYNC_CONSUMER",
    "ORDERLENS_WAREHOUSE",
    "ORDERLENS_DATASET",
    "ORDERLENS_MARTS",
}


class TestSettings:
    def test_defaults_follow_spec(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in ("DATABASE_URL", "API_KEY", "FX_API_KEY", "FX_PROVIDER", "FX_MODE"):
            monkeypatch.delenv(name, raising=False)
        s = settings()
        assert s.database_url is None and s.embedded
        assert s.api_key is None
        assert s.fx_provider is FxProvider.ECB
        assert str(s.fx_api_url).rstrip("/") == "https://api.freecurrencyapi.com/v1"
        assert s.fx_cache_ttl_seconds == 3600
        assert s.fx_mode is FxMode.LATEST
        assert s.max_upload_bytes == 1024**3
        assert (s.host, s.port) == ("127.0.0.1", 8000)
        assert s.orderlens_data_dir == Path(".orderlens")

    def test_reads_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/orders")
        monkeypatch.setenv("API_KEY", "k1")
        monkeypatch.setenv("FX_MODE", "order_date")
        monkeypatch.setenv("MAX_UPLOAD_BYTES", "1000")
        monkeypatch.setenv("ORDERLENS_DATA_DIR", "/tmp/elsewhere")
        s = settings()
        assert s.database_url is not None
        assert s.database_url.get_secret_value() == "postgresql://u:p@db:5432/orders"
        assert s.api_key is not None and s.api_key.get_secret_value() == "k1"
        assert s.fx_mode is FxMode.ORDER_DATE
        assert s.max_upload_bytes == 1000
        assert s.orderlens_data_dir == Path("/tmp/elsewhere")

    def test_read_keys_are_comma_separated(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("READ_API_KEYS", " r1, r2 ,,r3 ")
        monkeypatch.setenv("READ_ACCESS", "key")
        s = settings()
        assert [k.get_secret_value() for k in s.read_api_keys] == ["r1", "r2", "r3"]
        assert s.reads_need_key
        assert "r1" not in repr(s)
        monkeypatch.setenv("READ_ACCESS", "")
        monkeypatch.setenv("READ_API_KEYS", "")
        s = settings()
        assert s.read_access is None and not s.reads_need_key and s.read_api_keys == []
        with pytest.raises(ValidationError):
            settings(read_access="private")

    def test_reads_dotenv_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("FX_CACHE_TTL_SECONDS", raising=False)
        env = tmp_path / ".env"
        env.write_text("FX_CACHE_TTL_SECONDS=60\nPORT=9000\n")
        s = Settings(_env_file=env)
        assert (s.fx_cache_ttl_seconds, s.port) == (60, 9000)

    def test_secrets_are_not_in_repr(self) -> None:
        s = settings(api_key="sekrit", fx_api_key="fxsekrit", database_url="postgresql://u:pw@h/d")
        assert "sekrit" not in repr(s) and "pw@" not in repr(s)

    def test_fx_provider_defaults_to_freecurrencyapi_with_a_key(self) -> None:
        assert settings(fx_api_key="abc").fx_provider is FxProvider.FREECURRENCYAPI
        assert settings(fx_api_key="abc", fx_provider="ecb").fx_provider is FxProvider.ECB

    def test_freecurrencyapi_without_key_fails_fast(self) -> None:
        with pytest.raises(ValidationError, match="FX_API_KEY"):
            settings(fx_provider="freecurrencyapi")

    def test_blank_values_mean_unset(self) -> None:
        s = settings(api_key="  ", database_url="", fx_api_key="")
        assert s.api_key is None and s.database_url is None and s.fx_api_key is None

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("database_url", "mysql://u@h/d"),
            ("max_upload_bytes", 0),
            ("fx_cache_ttl_seconds", -1),
            ("fx_mode", "yesterday"),
            ("fx_provider", "bank"),
            ("port", 70000),
        ],
    )
    def test_invalid_values_fail_fast(self, name: str, value: object) -> None:
        with pytest.raises(ValidationError):
            settings(**{name: value})

    def test_env_example_names_every_setting(self) -> None:
        example = (Path(__file__).resolve().parents[1] / ".env.example").read_text()
        for field in Settings.model_fields:
            assert field.upper() in example, field

    def test_the_configuration_page_names_every_setting_and_no_other(self) -> None:
        """docs/CONFIGURATION.md's tables cannot drift from the settings class: each
        setting has a row, and each row names a setting or one of the variables only the
        command line, make or dbt read."""
        page = (Path(__file__).resolve().parents[1] / "docs" / "CONFIGURATION.md").read_text()
        rows = re.findall(r"^\| ([^|]+) \|", page, re.MULTILINE)
        documented = {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row)}
        settings_names = {field.upper() for field in Settings.model_fields}
        assert settings_names - documented == set()
        assert documented - settings_names == CLIENT_VARIABLES

    def test_the_configuration_page_holds_the_table_the_fields_give(self) -> None:
        """The settings' table is written from the fields' descriptions (`make docs`):
        a field added, removed or described anew without it fails here."""
        from app.config import TABLE_END, TABLE_START, settings_table

        page = (Path(__file__).resolve().parents[1] / "docs" / "CONFIGURATION.md").read_text()
        written = page.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0].strip()
        assert written == settings_table(), "docs/CONFIGURATION.md is stale: run `make docs`"
        assert all(field.description for field in Settings.model_fields.values())

    def test_env_example_as_is_is_valid(self, tmp_path: Path) -> None:
        example = Path(__file__).resolve().parents[1] / ".env.example"
        s = Settings(_env_file=example)
        assert s.fx_provider is not None
