"""The objects handed out (classes built from tasker-shared-ffi's object table), the conversions of JSON
arguments, and the errors' cause chains."""

from __future__ import annotations

import datetime as dt
import sys

import pytest

import tasker_core
from tasker_core import Client, testing


def _task(client: Client, context: object) -> tasker_core.Task:
    testing.register_pattern(client, "linear", n=1)
    return client.create_task("testkit", "linear_1", context=context)


def test_objects_are_read_only_values_with_plain_to_dict(tasker_manual_client: Client) -> None:
    c = tasker_manual_client
    made = testing.linear(c, n=2)
    assert isinstance(made, tasker_core.PatternTasks) and isinstance(made, tasker_core.Object)
    step = c.steps(made.tasks[0].id)[0]
    assert isinstance(step.retry, tasker_core.RetryPolicy) and step.error is None
    assert isinstance(step.retry.jitter, float) and isinstance(step.attempts, int)
    assert step.created_at.tzinfo is not None and step.started_at is None
    plain = made.to_dict()
    assert isinstance(plain["template"], dict) and isinstance(plain["tasks"][0], dict)
    assert plain["template"]["steps"][0]["retry"]["backoff"] == "none"
    assert c.steps(made.tasks[0].id)[0] == step and step != made
    with pytest.raises(AttributeError):
        step.state = "complete"  # type: ignore[misc]
    assert repr(step.retry).startswith("tasker_core.RetryPolicy(max_attempts=3, retryable=True, backoff='none'")
    assert type(step).__fields__ == tuple(step.to_dict())


def test_an_object_can_be_built_for_tests_with_every_field_and_no_other() -> None:
    token = tasker_core.ClaimToken(step_id="s", attempt=1)
    assert token.to_dict() == {"step_id": "s", "attempt": 1}
    with pytest.raises(TypeError, match="missing fields \\['attempt'\\]"):
        tasker_core.ClaimToken(step_id="s")
    with pytest.raises(TypeError, match="unknown fields \\['colour'\\]"):
        tasker_core.ClaimToken(step_id="s", attempt=1, colour="red")


def test_json_arguments_round_trip(tasker_client: Client) -> None:
    context = {"a": [1, 2.5, True, None, "x", (3,)], "b": {"c": 2**63}, "when": "2030-01-01T00:00:00Z"}
    task = _task(tasker_client, context)
    assert task.context == {"a": [1, 2.5, True, None, "x", [3]], "b": {"c": 2**63}, "when": "2030-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    "context, path, message",
    [
        ({"items": [1, 2, 3, {"sku": object()}]}, "context.items[3].sku", "expected a JSON value, found object"),
        ({"x": float("nan")}, "context.x", "NaN"),
        ({"at": dt.datetime(2030, 1, 1)}, "context.at", "found datetime"),
        ({1: 2}, "context", "expected str keys, found int"),
        ({"n": 2**64}, "context.n", "fits in 64 bits"),
    ],
)
def test_a_value_json_cannot_hold_is_a_validation_error_naming_its_path(
    tasker_client: Client, context: dict, path: str, message: str
) -> None:
    with pytest.raises(tasker_core.ValidationError) as info:
        _task(tasker_client, context)
    first = info.value.details["errors"][0]
    assert first["path"] == path and message in first["message"], first


def test_an_error_chains_its_causes_outermost_first() -> None:
    host = sys.modules["tasker_core._host"]
    error = host.exception(tasker_core.DatabaseError, tasker_core.TaskerError, "outer", "database", {}, ["middle", "inner"])
    assert (error.code, error.details, error.causes) == ("database", {}, ["middle", "inner"])
    assert str(error.__cause__) == "middle" and str(error.__cause__.__cause__) == "inner"
    assert error.__cause__.__cause__.__cause__ is None and error.__cause__.code == "database"
    assert host.exception(tasker_core.ClosedError, tasker_core.TaskerError, "x", "closed", {}, []).__cause__ is None


def test_every_error_class_is_a_tasker_error_of_its_module() -> None:
    assert issubclass(tasker_core.TimeoutError, TimeoutError)
    with pytest.raises(TimeoutError):
        with Client.connect("memory:") as c:
            testing.linear(c, n=2)
            testing.run_until_idle(c, {"testkit.noop": lambda ctx: __import__("time").sleep(0.05)}, timeout=0.01)
