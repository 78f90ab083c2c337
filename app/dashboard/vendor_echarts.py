"""Refresh the dashboard's vendored Apache ECharts from the npm registry:

    .venv/bin/python -m app.dashboard.vendor_echarts 6.1.0

writes static/echarts.min.js (the package's dist/echarts.min.js as it is), static/
echarts.LICENSE.txt (its Apache-2.0 licence, NOTICE and the licence of the d3 code it
bundles) and static/echarts.VERSION. Needs `npm`; the page itself fetches nothing from
anywhere but the service. A development tool: the service never imports it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"


def vendor(version: str, static: Path = STATIC) -> None:
    """Fetch `echarts@version` with `npm pack` and copy its bundle and licences."""
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise ValueError(f"not a version: {version!r} (e.g. 6.1.0)")
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to fetch ECharts")
    with tempfile.TemporaryDirectory() as work:
        subprocess.run(  # noqa: S603 (a fixed command; the version is checked above)
            [npm, "pack", "--silent", f"echarts@{version}"],
            cwd=work,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        with tarfile.open(Path(work) / f"echarts-{version}.tgz") as archive:
            archive.extractall(work, filter="data")
        package = Path(work) / "package"
        (static / "echarts.min.js").write_bytes((package / "dist" / "echarts.min.js").read_bytes())
        parts = [
            (package / "LICENSE").read_text(),
            "---- NOTICE ----\n",
            (package / "NOTICE").read_text(),
        ]
        for extra in sorted((package / "licenses").glob("*")):
            parts += [f"---- {extra.name} ----\n", extra.read_text()]
        (static / "echarts.LICENSE.txt").write_text("\n\n".join(parts))
        (static / "echarts.VERSION").write_text(f"{version}\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m app.dashboard.vendor_echarts VERSION (e.g. 6.1.0)")
    vendor(sys.argv[1])
    print(f"static/echarts.min.js is ECharts {sys.argv[1]}")
