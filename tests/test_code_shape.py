"""The code's plain shape checks (issue 30): small modules and functions, few modules at
the top of `app/`, and every database connection typed as what it is. Each fails naming
the offenders, so a change that breaks one says where."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"

MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60
MAX_TOP_LEVEL_MODULES = 10
CONNECTION_NAME = re.compile(r"(^|_)(conn|connection|reading)s?$")


def modules() -> Iterator[Path]:
    return (path for path in sorted(APP.rglob("*.py")) if "__pycache__" not in path.parts)


def parsed() -> Iterator[tuple[Path, ast.Module]]:
    for path in modules():
        yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def relative(path: Path) -> str:
    return str(path.relative_to(APP.parent))


def test_no_module_is_longer_than_450_lines() -> None:
    long = {
        relative(path): lines
        for path in modules()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_function_is_longer_than_60_lines() -> None:
    long = {
        f"{relative(path)}:{node.lineno} {node.name}": lines
        for path, tree in parsed()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (lines := (node.end_lineno or node.lineno) - node.lineno + 1) > MAX_FUNCTION_LINES
    }
    assert long == {}


def test_at_most_ten_modules_sit_directly_in_app() -> None:
    top = sorted(path.name for path in APP.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def _is_any(annotation: ast.expr | None) -> bool:
    if annotation is None:
        return False
    text = ast.unparse(annotation)
    return bool(re.fullmatch(r"(typing\.)?Any( \| None)?|None \| (typing\.)?Any", text))


def test_no_connection_is_typed_any() -> None:
    """Parameters and annotated names that hold a connection (`conn`, `connection`,
    `reading` …) are typed asyncpg's or SQLAlchemy's, never `Any`: strict mypy checks
    nothing where it sees `Any`."""
    untyped = []
    for path, tree in parsed():
        for node in ast.walk(tree):
            if isinstance(node, ast.arg):
                name, annotation = node.arg, node.annotation
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                name, annotation = node.target.id, node.annotation
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Attribute):
                name, annotation = node.target.attr, node.annotation
            else:
                continue
            if CONNECTION_NAME.search(name) and _is_any(annotation):
                untyped.append(f"{relative(path)}:{node.lineno} {name}")
    assert untyped == []


def test_the_checks_see_what_they_check(tmp_path: Path) -> None:
    """The checks can fail: a long function, an Any connection are seen as such."""
    source = "def f(conn: Any, other: int) -> None:\n" + "    x = 1\n" * 70
    tree = ast.parse(source)
    function = tree.body[0]
    assert isinstance(function, ast.FunctionDef)
    assert (function.end_lineno or 0) - function.lineno + 1 > MAX_FUNCTION_LINES
    assert CONNECTION_NAME.search(function.args.args[0].arg)
    assert _is_any(function.args.args[0].annotation)
    assert not _is_any(function.args.args[1].annotation)
    assert _is_any(ast.parse("x: Any | None", mode="exec").body[0].annotation)  # type: ignore[attr-defined]
