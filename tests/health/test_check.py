"""`python -m app.health.check`, the container's health check: 0 when /readyz answers
200 on the configured port, 1 otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from app.health.check import ready_url

ROOT = Path(__file__).resolve().parents[2]


def check(port: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PORT": port}
    return subprocess.run(
        [sys.executable, "-m", "app.health.check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_ready_service_is_healthy_on_the_configured_port(live: str) -> None:
    result = check(str(urlsplit(live).port))
    assert result.returncode == 0, result.stderr


def test_nothing_listening_is_unhealthy() -> None:
    result = check("1")  # tcpmux: nothing listens, refused at once
    assert result.returncode == 1
    assert "127.0.0.1:1/readyz" in result.stderr


def test_the_port_defaults_to_8000() -> None:
    assert ready_url({}) == "http://127.0.0.1:8000/readyz"
    assert ready_url({"PORT": "9000"}) == "http://127.0.0.1:9000/readyz"


def test_the_image_checks_readyz_in_exec_form_as_a_numeric_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'CMD ["python", "-m", "app.health.check"]' in dockerfile
    assert "\nUSER 10001:10001\n" in dockerfile
    assert 'CMD ["orderlens", "serve"]' in dockerfile  # serve migrates before it serves
