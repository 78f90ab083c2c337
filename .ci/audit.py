"""`make audit`: pip-audit over the installed environment (the project itself skipped).

Fails on a known vulnerability. When the vulnerability service cannot be asked (this
workplace reaches the package index but not PyPI's JSON API nor OSV, so pip-audit skips
every package and would print "No known vulnerabilities found"), it says so loudly and
passes, so that CI is not flaky; AUDIT_REQUIRED=1 makes that a failure too.
See docs/RELIABILITY.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SERVICE = os.environ.get("AUDIT_SERVICE", "pypi")  # or "osv"
REQUIRED = os.environ.get("AUDIT_REQUIRED") == "1"
TIMEOUT_SECONDS = 180  # a network that drops packets must not hold CI up


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "audit.json"
        command = [
            sys.executable, "-m", "pip_audit", "--skip-editable", "--progress-spinner", "off",
            "--timeout", "10", "-s", SERVICE, "-f", "json", "-o", str(out),
        ]  # fmt: skip
        try:
            run = subprocess.run(  # noqa: S603
                command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
            )
        except subprocess.TimeoutExpired:
            return unaudited(f"pip-audit did not finish within {TIMEOUT_SECONDS} s")
        report = json.loads(out.read_text()) if out.exists() and out.stat().st_size else None
    if report is None:
        return unaudited(f"pip-audit could not run against {SERVICE}: {run.stderr.strip()[-300:]}")
    deps = report["dependencies"]
    vulnerable = [d for d in deps if d.get("vulns")]
    skipped = [d for d in deps if "skip_reason" in d]
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
            print(f"VULNERABLE {dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixed})")
    if vulnerable:
        return 1
    if deps and len(skipped) == len(deps):
        return unaudited(
            f"the {SERVICE} vulnerability service answered for none of {len(deps)} packages"
            f" ({skipped[0]['skip_reason']})"
        )
    audited = len(deps) - len(skipped)
    print(f"pip-audit ({SERVICE}): {audited} packages audited, no known vulnerability", end="")
    print(
        f"; {len(skipped)} could not be: {', '.join(d['name'] for d in skipped)}" if skipped else ""
    )
    return 0


def unaudited(why: str) -> int:
    print(f"pip-audit: NOT AUDITED: {why}.")
    print("  Nothing is known either way. AUDIT_REQUIRED=1 turns this into a failure.")
    return 2 if REQUIRED else 0


if __name__ == "__main__":
    sys.exit(main())
