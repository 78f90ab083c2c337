"""Where `orderlens sync` writes: the destination URLs it takes (DuckDB, PostgreSQL, a
folder of Delta tables, BigQuery), parsed and checked, and dlt's destination for each."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class SyncError(Exception):
    """A sync that could not run: one line for the user."""


@dataclass(frozen=True)
class Destination:
    """Where a sync writes: dlt's destination kind and what it needs."""

    kind: str  # duckdb, postgres, filesystem, bigquery
    target: str  # a file path, a connection URL, a bucket URL, or a project id
    # The dataset (schema) the rows go to; None until resolved (a bigquery:// URL names it).
    dataset: str | None = None

    def describe(self) -> str:
        if self.kind == "postgres":
            parts = urlsplit(self.target)
            where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"
            return f"postgres {where}, schema {self.dataset}"
        if self.kind == "bigquery":
            return f"bigquery project {self.target}, dataset {self.dataset}"
        return f"{self.kind} {self.target}, dataset {self.dataset}"


def parse_destination(url: str) -> Destination:
    """`duckdb:///relative/path`, `duckdb:////absolute/path`, `postgresql://…`,
    `file:///dir` (Delta tables of Parquet files) or `bigquery://project/dataset`."""
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme == "duckdb":
        if not rest.startswith("/") or rest == "/":
            raise SyncError(f"{url}: write duckdb:///relative/path or duckdb:////absolute/path")
        return Destination("duckdb", rest[1:])
    if scheme in {"postgresql", "postgres"}:
        parts = urlsplit(url)
        if not parts.path.strip("/"):
            raise SyncError(f"{_safe(url)}: name the database: postgresql://user@host/db")
        return Destination("postgres", url)
    if scheme == "file":
        if not rest.startswith("/") or rest == "/":
            raise SyncError(f"{url}: write file:///absolute/folder")
        return Destination("filesystem", url)
    if scheme == "bigquery":
        project, _, dataset = rest.partition("/")
        if not project or not dataset or "/" in dataset:
            raise SyncError(f"{url}: write bigquery://project/dataset")
        return Destination("bigquery", project, dataset)
    raise SyncError(
        f"{_safe(url)}: unknown destination; use duckdb:///path, postgresql://…, file:///dir"
        " or bigquery://project/dataset"
    )


def _safe(url: str) -> str:
    """A URL without its password."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def dlt_destination(dest: Destination) -> Any:
    """dlt's destination for `dest` (dlt imported here: a heavy import)."""
    from dlt import destinations

    if dest.kind == "duckdb":
        Path(dest.target).parent.mkdir(parents=True, exist_ok=True)
        return destinations.duckdb(credentials=dest.target)
    if dest.kind == "postgres":
        from dlt.destinations.impl.postgres.configuration import PostgresCredentials

        credentials = PostgresCredentials()
        credentials.parse_native_representation(dest.target)
        if credentials.password is None:  # trust or peer authentication: dlt wants one
            credentials.password = ""
        credentials.resolve()
        return destinations.postgres(credentials=credentials)
    if dest.kind == "filesystem":
        return destinations.filesystem(bucket_url=dest.target)
    project: Any = {"project_id": dest.target}  # the rest from Google's default auth
    return destinations.bigquery(credentials=project)
