"""The shape of the upload pipeline: the statements a plan runs (compared with files kept
in tests/uploads/plans/), who owns each temporary table, the rule table behind the docs,
and the limits on parameters and imports that keep the code readable."""

from __future__ import annotations

import ast
import json
import os
import re
from dataclasses import fields
from pathlib import Path

import pytest

from app.uploads import sql
from app.uploads.dialect import DateFormat, Dialect, FileFormat
from app.uploads.models import OnConflict, UploadKind
from app.uploads.plan import Plan, StagingPath
from app.uploads.rules import reject_code_table
from app.uploads.sql import bookkeeping

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"
PLANS = Path(__file__).with_name("plans")
ORDER = ("id", "product_id", "quantity", "created_date")
NAMES = ("id", "name", "category", "price")

CASES = {
    # A big new-orders file on the fast path, its rollups summed aside.
    "orders-fast-new-unique-aside": Plan(
        UploadKind.ORDERS, OnConflict.REJECT, StagingPath.FAST, ORDER, 1, 4,
        stored_in_range=False, unique_ids=True, sum_aside=True, keys_by_set=True,
    ),
    # An orders file that meets stored ids and replaces them, parsed carefully.
    "orders-careful-stored-update": Plan(
        UploadKind.ORDERS, OnConflict.UPDATE, StagingPath.CAREFUL, ORDER[::-1], 1, 5,
        stored_in_range=True, unique_ids=False,
    ),
    "products-fast-new": Plan(
        UploadKind.PRODUCTS, OnConflict.REJECT, StagingPath.FAST, NAMES, 1, 4,
        stored_in_range=False, unique_ids=True,
    ),
    "products-careful-stored-reject": Plan(
        UploadKind.PRODUCTS, OnConflict.REJECT, StagingPath.CAREFUL, NAMES, 2, 4,
        stored_in_range=True,
    ),
    # Issue 14: a `;` file from Excel: prices with a decimal comma.
    "products-fast-decimal-comma": Plan(
        UploadKind.PRODUCTS, OnConflict.REJECT, StagingPath.FAST, NAMES, 1, 4,
        dialect=Dialect(FileFormat.CSV, "cp1252", ";", ","), stored_in_range=False,
    ),
    # Orders with `?date_format=%d/%m/%Y`.
    "orders-fast-date-format": Plan(
        UploadKind.ORDERS, OnConflict.REJECT, StagingPath.FAST, ORDER, 1, 4,
        dialect=Dialect(date_format=DateFormat(("d", "m", "Y"), "/")), stored_in_range=False,
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_plan_prints_the_statements_kept_for_it(name: str) -> None:
    """`UPDATE_PLANS=1` rewrites the files; read the diff before committing it."""
    printed = sql.printed(CASES[name])
    kept = PLANS / f"{name}.sql"
    if os.environ.get("UPDATE_PLANS"):
        kept.write_text(printed)
    assert printed == kept.read_text(), f"the statements of {name} changed"


def test_no_statement_names_a_temporary_table_it_does_not_own() -> None:
    sources = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts): path.read_text()
        for path in APP.rglob("*.py")
    }
    created = set()
    for text in sources.values():
        created |= set(re.findall(r"CREATE TEMP TABLE \{?([a-z_]+)", text))
    for table, owner in sql.TEMP_TABLES.items():
        users = {m for m, text in sources.items() if re.search(rf"\b{table}\b", text)}
        assert users == {owner}, (table, users)
    # Every CREATE TEMP TABLE in app/ names a listed table (or one of the owner's
    # constants, which resolve to listed names).
    unlisted = {name for name in created if name.islower() and name not in sql.TEMP_TABLES}
    assert not unlisted, unlisted


def test_the_finished_upload_record_names_the_parameters_of_its_statement() -> None:
    """`FinishedUpload`'s fields are `FINISH_UPLOAD`'s parameters, by name and in order."""
    statement = bookkeeping.FINISH_UPLOAD
    named = {int(n): name for name, n in re.findall(r"(\w+) = \$(\d+)", statement)}
    assert [named[n] for n in sorted(named)] == [f.name for f in fields(bookkeeping.FinishedUpload)]
    warnings, by_code, dialect = ["a warning"], {"conflict": 2}, {"decimal": "."}
    finished = bookkeeping.FinishedUpload(
        7, "ab", ["id"], warnings, 10, 3, 1, 0, 0, 2, by_code, dialect
    )
    assert finished.args() == (
        7, "ab", ["id"], json.dumps(warnings), 10, 3, 1, 0, 0, 2, json.dumps(by_code),
        json.dumps(dialect),
    )  # fmt: skip


def test_the_upload_docs_list_the_reject_codes_of_the_rule_table() -> None:
    assert reject_code_table() in (ROOT / "docs" / "UPLOADS.md").read_text()


def _functions() -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    found = []
    for path in APP.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found.append((f"{path.relative_to(ROOT)}:{node.name}", node))
    return found


def _is_command(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A Typer command (`@cli.command()`), whose parameters are its command-line options."""
    return any(
        isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr == "command"
        for d in node.decorator_list
    )


def test_no_function_takes_more_than_six_parameters() -> None:
    """Commands excepted: their parameters are the options a user types, each one line of
    help (`orderlens pipeline serve` has seven)."""
    wide = []
    for name, node in _functions():
        if _is_command(node):
            continue
        args = node.args
        params = [*args.posonlyargs, *args.args, *args.kwonlyargs]
        params += [a for a in (args.vararg, args.kwarg) if a is not None]
        count = len([p for p in params if p.arg not in ("self", "cls")])
        if count > 6:
            wide.append((name, count))
    assert not wide


def test_no_router_imports_a_router() -> None:
    offenders = []
    for path in APP.rglob("router.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith(".router"):
                offenders.append((str(path.relative_to(ROOT)), node.module))
    assert not offenders


def test_handlers_never_read_request_state() -> None:
    """Request-scoped values reach handlers through dependencies (app/kit/deps.py)."""
    readers = []
    for name, node in _functions():
        if not name.split(":")[0].endswith("router.py"):
            continue
        source = ast.unparse(node)
        if "request.state" in source:
            readers.append(name)
    assert not readers
