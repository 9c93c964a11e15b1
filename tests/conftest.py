"""Shared fixtures: every test runs with a clean nascli environment (no experiment variables)."""

from __future__ import annotations

import pytest

_NASCLI_VARS = (
    "NASCLI_PLATFORM",
    "NASCLI_EXP_ID",
    "NASCLI_TRIAL_ID",
    "NASCLI_TRIAL_SEQ",
    "NASCLI_TRIAL_DIR",
    "NASCLI_OUTPUT_DIR",
    "NASCLI_GEN_SEARCH_SPACE",
)


@pytest.fixture(autouse=True)
def clean_nascli_env(monkeypatch, tmp_path):
    for var in _NASCLI_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NASCLI_HOME", str(tmp_path / "nascli-home"))
