"""`python -m app.health.check`: exit 0 when the service on this machine answers
`/readyz` with 200 (database reachable, schema at head), else 1. For container health
checks: the standard library only, so it starts in a few milliseconds, and the port is
the configured one (PORT), which an exec-form HEALTHCHECK cannot expand itself."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 3


def ready_url(environ: dict[str, str] | os._Environ[str] = os.environ) -> str:
    return f"http://127.0.0.1:{environ.get('PORT', '8000').strip() or '8000'}/readyz"


def main() -> int:
    url = ready_url()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            ok = response.status == 200
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
