"""The assessment's reference folder is required, never skipped over: a checkout without
it fails the tests that check the assessment's figures, saying where it must be."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import conftest


def test_a_missing_reference_folder_fails_with_where_it_must_be(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conftest, "REFERENCE", tmp_path / "reference")
    with pytest.raises(pytest.fail.Exception, match=r"reference folder is absent: .*reference"):
        conftest.require_reference()


def test_the_reference_folder_is_there() -> None:
    assert conftest.require_reference() == conftest.REFERENCE
