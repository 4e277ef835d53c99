"""Replays every tests/scenarios/*.yaml through the Python client and worker (docs/bindings.md §9)."""

from __future__ import annotations

import os
import pathlib
import uuid

import pytest

from conftest import SCENARIO_DIR
from scenario_runner import run
from tasker_core import _native

FILES = [pathlib.Path(p) for p in _native.scenario_files(str(SCENARIO_DIR))]


def test_the_scenario_directory_is_not_empty() -> None:
    assert len(FILES) >= 10, f"expected the scenario files in {SCENARIO_DIR}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario_on_memory(path: pathlib.Path) -> None:
    run(_native.load_scenario(str(path)), "memory:")


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario_on_sqlite_memory(path: pathlib.Path) -> None:
    run(_native.load_scenario(str(path)), "sqlite::memory:")


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario_on_sqlite_file(path: pathlib.Path, tmp_path: pathlib.Path) -> None:
    run(_native.load_scenario(str(path)), f"sqlite://{tmp_path / 'scenario.db'}")


PG_URL = os.environ.get("TASKER_TEST_PG_URL")


@pytest.mark.skipif(not PG_URL, reason="TASKER_TEST_PG_URL is not set")
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario_on_postgres(path: pathlib.Path) -> None:
    run(_native.load_scenario(str(path)), _fresh_pg_database(PG_URL))


def _fresh_pg_database(url: str) -> str:
    """An empty database on the server of ``url`` for one replay, as the Rust suite does: scenarios expect a
    fresh store. Made with ``psql`` (the xtask part puts PostgreSQL's bin dir on PATH) because the package
    itself has no DDL API."""
    import subprocess

    name = "py_" + uuid.uuid4().hex[:12]
    subprocess.run(["psql", url, "-q", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    return f"{url.rsplit('/', 1)[0]}/{name}"


def test_the_runner_reports_every_difference() -> None:
    """The replay is only worth something if a wrong expectation fails it, with the place named."""
    from scenario_runner import ScenarioFailed

    scenario = _native.load_scenario(str(SCENARIO_DIR / "linear_success.yaml"))
    task = next(iter(scenario["expect"]["tasks"].values()))
    task["state"] = "error"
    if task.get("events"):
        task["events"] = task["events"][:-1]
    with pytest.raises(ScenarioFailed) as info:
        run(scenario, "memory:")
    text = str(info.value)
    assert ".state: expected error, found complete" in text
    if task.get("events"):
        assert "sequences differ" in text
    assert "observed:" in text


def test_the_runner_reports_a_schedule_that_differs_with_times_compared_as_instants() -> None:
    from scenario_runner import ScenarioFailed

    scenario = _native.load_scenario(str(SCENARIO_DIR / "cron_schedule.yaml"))
    actions = [a for a in scenario["script"] if isinstance(a, dict)]
    check = next(a["check_schedules"] for a in actions if "check_schedules" in a)
    check["every_minute"]["next_fire_at"] = "2030-01-01T01:03:00+01:00"  # 00:03Z; the schedule says 00:02Z
    pause = next(a["pause_schedule"] for a in actions if "expect" in a.get("pause_schedule", {}))
    pause["expect"]["next_fire_at"] = "2030-01-01T00:03:00Z"
    fire = next(a["fire_schedules"] for a in actions if a.get("fire_schedules", {}).get("expect_missed") == 8)
    fire["expect_missed"] = 9
    with pytest.raises(ScenarioFailed) as info:
        run(scenario, "memory:")
    text = str(info.value)
    assert "check_schedules.every_minute.next_fire_at: expected 2030-01-01T00:03:00+00:00, found 2030-01-01T00:02:00+00:00" in text
    assert "pause_schedule.next_fire_at: expected 2030-01-01T00:03:00+00:00, found none" in text
    assert "fire_schedules: expected missed 9, found 8" in text
