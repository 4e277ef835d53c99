"""Shared pytest setup: the scenario directory and a SQLite file URL per test."""

from __future__ import annotations

import os
import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
# The scenario runner is a helper module next to the tests, not part of the package.
sys.path.insert(0, str(HERE))

#: tests/scenarios of the repository (crates/tasker-python/tests → ../../../tests/scenarios).
SCENARIO_DIR = pathlib.Path(os.environ.get("TASKER_SCENARIO_DIR", HERE.parents[2] / "tests" / "scenarios"))


@pytest.fixture
def sqlite_url(tmp_path: pathlib.Path) -> str:
    return f"sqlite://{tmp_path / 'tasker.db'}"
