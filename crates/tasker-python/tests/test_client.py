"""The client surface: context manager, use after close, argument types, fork refusal, the GIL, results."""

from __future__ import annotations

import datetime as dt
import os
import sys
import threading
import time

import pytest

import tasker_core
from tasker_core import Client

TEMPLATE = """
namespace: shop
name: order
version: 1.0.0
input_schema:
  type: object
  required: [order_id]
  properties: { order_id: { type: integer } }
steps:
  - { name: charge, handler: shop.charge }
  - { name: ship, handler: shop.ship, depends_on: [charge] }
"""


def test_the_context_manager_closes_the_client() -> None:
    with Client.connect("memory:") as client:
        assert not client.closed
        client.register_template(TEMPLATE)
    assert client.closed


def test_use_after_close_raises_closed_error_and_close_is_idempotent() -> None:
    client = Client.connect("memory:")
    client.close()
    client.close()
    for call in (client.templates, client.health, lambda: client.task("01a21860-f1f4-72e3-a158-b367b7ba9fc8"), client.subscribe):
        with pytest.raises(tasker_core.ClosedError) as info:
            call()
        assert info.value.code == "closed"
        assert isinstance(info.value, tasker_core.TaskerError)


def test_results_are_typed_objects(tasker_client: Client) -> None:
    reg = tasker_client.register_template(TEMPLATE)
    assert isinstance(reg, tasker_core.Registration) and reg.created is True
    assert [s.name for s in reg.template.steps] == ["charge", "ship"]
    task = tasker_client.create_task("shop", "order", context={"order_id": 7}, tags={"team": "a"})
    assert isinstance(task.id, str) and task.state == "pending"
    assert task.context == {"order_id": 7} and task.tags == {"team": "a"}
    assert task.created_at.tzinfo is not None and task.created_at.utcoffset() == dt.timedelta(0)
    assert task.to_dict()["id"] == task.id
    assert tasker_client.task(task.id) == task
    explain = tasker_client.explain(task.id)
    assert [s.name for s in explain.steps if s.ready] == ["charge"]
    assert [t.id for t in tasker_client.tasks(namespace="shop")] == [task.id]
    assert tasker_client.cancel_task(task.id, "no longer needed").state == "cancelled"
    health = tasker_client.health()
    assert health.store_kind and health.pid == os.getpid()
    assert tasker_client.validate_or_refresh() is False


def test_idempotency_key_returns_the_same_task(tasker_client: Client) -> None:
    tasker_client.register_template(TEMPLATE)
    a = tasker_client.create_task("shop", "order", context={"order_id": 1}, idempotency_key="k")
    b = tasker_client.create_task("shop", "order", context={"order_id": 1}, idempotency_key="k")
    assert a.id == b.id


def test_wrong_argument_types_raise_type_error_or_validation_with_the_field_path(tasker_client: Client) -> None:
    tasker_client.register_template(TEMPLATE)
    with pytest.raises(TypeError):
        tasker_client.create_task(5, "order", context={})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tasker_client.create_task("shop", "order", {"order_id": 1})  # type: ignore[misc]  # context is keyword-only
    with pytest.raises(tasker_core.ValidationError) as info:
        tasker_client.create_task("shop", "order", context={"order_id": 1, "items": [1, 2, 3, {"sku": object()}]})
    err = info.value
    assert err.code == "validation"
    assert err.details["errors"][0]["path"] == "context.items[3].sku"
    assert "expected a JSON value, found object" in err.details["errors"][0]["message"]
    with pytest.raises(tasker_core.ValidationError) as info:
        tasker_client.create_task("shop", "order", context=[1])
    assert info.value.details["errors"][0]["path"] == "context"
    # The engine's own validation (input_schema) names the field too.
    with pytest.raises(tasker_core.ValidationError) as info:
        tasker_client.create_task("shop", "order", context={"order_id": "x"})
    assert any("order_id" in e["path"] for e in info.value.details["errors"])
    with pytest.raises(tasker_core.ValidationError) as info:
        tasker_client.task("not-a-uuid")
    assert info.value.details["errors"][0]["path"] == "task_id"
    with pytest.raises(tasker_core.NotFoundError):
        tasker_client.template("shop", "nope")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_refuses_an_inherited_client_and_runs_a_task_on_its_own() -> None:
    client = Client.connect("memory:")
    client.register_template(TEMPLATE)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it saw through the pipe, never run pytest machinery
        code = 1
        try:
            client.templates()
            msg = "no error"
        except tasker_core.ConfigurationError as e:
            msg = f"{e.details.get('reason')}|{e.details.get('opened_pid')}|{e}"
            try:
                from tasker_core import testing

                with Client.connect("memory:") as own:
                    (task,) = testing.diamond(own).tasks
                    testing.run_until_idle(own, {"testkit.noop": lambda ctx: {}})
                    msg += f"|{own.task(task.id).state}"
                code = 0
            except BaseException as e2:  # noqa: BLE001
                msg += f"|own client failed: {type(e2).__name__}: {e2}"
        except BaseException as e:  # noqa: BLE001
            msg = f"other: {type(e).__name__}: {e}"
        os.write(write, msg.encode())
        os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    msg = os.read(read, 4096).decode()
    os.close(read)
    assert os.WEXITSTATUS(status) == 0, msg
    reason, opened, text, state = msg.split("|", 3)
    assert reason == "forked" and int(opened) == os.getpid()
    assert "open a new client after fork" in text
    assert state == "complete", msg
    # The parent's client still works.
    assert len(client.templates()) == 1
    client.close()


def test_the_gil_is_released_while_a_claim_waits(tasker_client: Client) -> None:
    tasker_client.register_template(TEMPLATE)
    session = tasker_client.worker_session(["shop.charge"], poll_interval=5.0)
    ticks = []
    stop = threading.Event()

    def tick() -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    t = threading.Thread(target=tick)
    t.start()
    started = time.monotonic()
    assert session.claim(1, wait=0.5) == []
    waited = time.monotonic() - started
    stop.set()
    t.join()
    session.shutdown()
    assert waited >= 0.45
    # The other thread kept running during the wait: many ticks, not one.
    assert len([x for x in ticks if started <= x <= started + waited]) >= 10


def test_manual_clock_and_sqlite_file(sqlite_url: str) -> None:
    with Client.connect(sqlite_url, clock="manual") as client:
        t0 = client.now()
        assert t0 == dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
        assert client.advance_clock(1.5) - t0 == dt.timedelta(seconds=1.5)
        assert client.clock == "manual"
    with pytest.raises(tasker_core.ValidationError):
        Client.connect("memory:", clock="lunar")


def test_run_at_priority_and_run_task_now() -> None:
    with Client.connect("memory:", clock="manual") as client:
        client.register_template(TEMPLATE)
        start = client.now() + dt.timedelta(minutes=5)
        later = client.create_task("shop", "order", context={"order_id": 1}, run_at=start, priority=7)
        assert (later.priority, later.run_at, later.held_until) == (7, start, start)
        explained = client.explain(later.id)
        assert explained.scheduled_for == start
        assert explained.steps[0].scheduled_for == start and not explained.steps[0].ready
        assert explained.steps[0].reasons == [f"scheduled for {start.isoformat()}"]
        delayed = client.create_task("shop", "order", context={"order_id": 2}, delay=90.0)
        assert delayed.held_until == client.now() + dt.timedelta(seconds=90)
        started = client.run_task_now(delayed.id)
        assert started.held_until is None and client.explain(delayed.id).steps[0].ready
        # A naive datetime has no time zone: refused, naming the field; nothing is written.
        with pytest.raises(tasker_core.ValidationError) as info:
            client.create_task("shop", "order", context={"order_id": 3}, run_at=dt.datetime(2031, 1, 1))
        assert info.value.details["errors"][0]["path"] == "run_at"
        with pytest.raises(tasker_core.ValidationError) as info:
            client.create_task("shop", "order", context={"order_id": 3}, priority=5000)
        assert info.value.details["errors"][0]["path"] == "priority"
        with pytest.raises(tasker_core.ValidationError):
            client.create_task("shop", "order", context={"order_id": 3}, run_at=start, delay=1.0)
        assert len(client.tasks()) == 2
        assert client.cancel_task(later.id).held_until is None
        with pytest.raises(tasker_core.InvalidTransitionError):
            client.run_task_now(later.id)


SCHEDULED = """
namespace: shop
name: order
version: 1.0.0
steps:
  - { name: charge, handler: shop.charge }
  - { name: ship, handler: shop.ship, depends_on: [charge] }
"""


def _fresh_pg_database(url: str) -> str:
    """An empty database on the server of ``url`` (made with psql, which the xtask part puts on PATH)."""
    import subprocess
    import uuid

    name = "py_" + uuid.uuid4().hex[:12]
    subprocess.run(["psql", url, "-q", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    return f"{url.rsplit('/', 1)[0]}/{name}"


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def scheduling_client(request: pytest.FixtureRequest, sqlite_url: str):  # type: ignore[no-untyped-def]
    """A manual-clock client with SCHEDULED registered, on each store: schedules are stored by each in its own
    way."""
    if request.param == "postgres":
        pg = os.environ.get("TASKER_TEST_PG_URL")
        if not pg:
            pytest.skip("needs TASKER_TEST_PG_URL (cargo xtask test-all --only python sets it)")
        url = _fresh_pg_database(pg)
    else:
        url = {"memory": "memory:", "sqlite": sqlite_url}[request.param]
    with Client.connect(url, clock="manual") as client:
        client.register_template(SCHEDULED)
        yield client


def test_schedules_fire_one_task_per_occurrence_and_are_managed_by_name(scheduling_client: Client) -> None:
    client = scheduling_client
    now = client.now()
    minute = lambda n: now + dt.timedelta(minutes=n)  # noqa: E731
    s = client.register_schedule("orders", "shop", "order", "* * * * *", context={"order": 1}, priority=3)
    assert isinstance(s, tasker_core.Schedule)
    assert (s.name, s.namespace, s.template, s.version, s.cron, s.timezone, s.misfire, s.priority, s.paused) == (
        "orders", "shop", "order", None, "* * * * *", "UTC", "skip", 3, False,
    )
    assert s.context == {"order": 1}
    assert s.next_fire_at.tzinfo is not None and s.next_fire_at.utcoffset() == dt.timedelta(0)
    assert (s.next_fire_at, s.last_fire_at, s.last_task_id, s.fired, s.missed) == (minute(1), None, None, 0, 0)
    again = client.register_schedule("orders", "shop", "order", "* * * * *", context={"order": 1}, priority=3)
    assert again == s, "an unchanged definition is left as it is"
    assert client.fire_schedules().fired == 0

    client.advance_clock(60)
    report = client.fire_schedules()
    assert isinstance(report, tasker_core.ScheduleReport)
    assert (report.fired, report.missed, report.failed, report.next_fire_at) == (1, 0, 0, minute(2))
    assert client.fire_schedules().fired == 0, "one task per occurrence"
    s = client.schedule("orders")
    assert (s.fired, s.last_fire_at) == (1, minute(1))
    task = client.task(s.last_task_id)
    assert (task.priority, task.context, task.initiator) == (3, {"order": 1}, "schedule:orders")
    explain = client.explain(task.id)
    assert (explain.schedule, explain.schedule_next_fire_at) == ("orders", minute(2))

    paused = client.pause_schedule("orders")
    assert (paused.paused, paused.next_fire_at) == (True, None)
    assert client.explain(task.id).schedule_next_fire_at is None
    client.advance_clock(120)
    assert client.fire_schedules().fired == 0
    resumed = client.resume_schedule("orders")
    assert (resumed.paused, resumed.next_fire_at) == (False, minute(4))
    assert client.schedules() == [resumed]

    removed = client.remove_schedule("orders")
    assert (removed.name, removed.fired) == ("orders", 1)
    assert client.schedules() == []
    with pytest.raises(tasker_core.NotFoundError):
        client.schedule("orders")
    with pytest.raises(tasker_core.NotFoundError):
        client.remove_schedule("orders")
    assert client.explain(task.id).schedule is None
    assert client.task(task.id).state == "pending", "its tasks stay"


def test_a_schedule_is_read_in_its_time_zone(scheduling_client: Client) -> None:
    client = scheduling_client
    s = client.register_schedule(
        "nightly", "shop", "order", "0 2 * * *", timezone="Europe/Berlin", version="1.0.0", misfire="run_once"
    )
    # 02:00 in Berlin in winter is 01:00 UTC.
    assert (s.timezone, s.version, s.misfire, s.next_fire_at) == (
        "Europe/Berlin", "1.0.0", "run_once", dt.datetime(2030, 1, 1, 1, tzinfo=dt.timezone.utc),
    )
    assert client.register_schedule("nightly", "shop", "order", "0 2 * * *", misfire="skip").misfire == "skip"


@pytest.mark.parametrize(
    "cron, options, path",
    [
        ("61 * * * *", {}, "cron"),
        ("* * * * *", {"timezone": "Mars/Olympus"}, "timezone"),
        ("* * * * *", {"misfire": "never"}, "misfire"),
        ("* * * * *", {"priority": 1 << 40}, "priority"),
        ("* * * * *", {"context": [1]}, "context"),
        ("* * * * *", {"context": {"at": object()}}, "context.at"),
    ],
)
def test_a_bad_schedule_is_a_validation_error_naming_the_field_and_writes_nothing(
    scheduling_client: Client, cron: str, options: dict, path: str
) -> None:
    with pytest.raises(tasker_core.ValidationError) as info:
        scheduling_client.register_schedule("s", "shop", "order", cron, **options)
    assert info.value.details["errors"][0]["path"] == path
    assert scheduling_client.schedules() == []
    with pytest.raises(tasker_core.NotFoundError) as missing:
        scheduling_client.pause_schedule("s")
    assert missing.value.code == "not_found"


def test_a_schedule_of_an_unknown_template_or_option_is_refused(scheduling_client: Client) -> None:
    client = scheduling_client
    with pytest.raises(tasker_core.NotFoundError):
        client.register_schedule("s", "shop", "nope", "* * * * *")
    # An unknown option is refused: by Python as a keyword, and by the native layer as a key.
    with pytest.raises(TypeError, match="misfires"):
        client.register_schedule("s", "shop", "order", "* * * * *", misfires="skip")  # type: ignore[call-arg]
    with pytest.raises(tasker_core.ValidationError, match="unknown field `misfires`"):
        client.native.register_schedule("s", "shop", "order", "* * * * *", {"misfires": "skip"})
    assert client.schedules() == []


def test_timeout_error_is_also_the_builtin() -> None:
    assert issubclass(tasker_core.TimeoutError, TimeoutError)
    assert issubclass(tasker_core.TimeoutError, tasker_core.TaskerError)


def test_every_kind_has_its_class() -> None:
    for name in (
        "ValidationError NotFoundError ConflictError InvalidTransitionError StaleClaimError CycleDetectedError "
        "ClosedError TimeoutError DatabaseError ConfigurationError HandlerError InternalError"
    ).split():
        cls = getattr(tasker_core, name)
        assert issubclass(cls, tasker_core.TaskerError), name
        assert cls.__module__ == "tasker_core"


def test_a_cycle_is_a_cycle_detected_error(tasker_client: Client) -> None:
    with pytest.raises(tasker_core.CycleDetectedError) as info:
        tasker_client.register_template(
            {"namespace": "x", "name": "loop", "version": "1.0.0", "steps": [
                {"name": "a", "handler": "x.a", "depends_on": ["b"]},
                {"name": "b", "handler": "x.b", "depends_on": ["a"]},
            ]}
        )
    assert info.value.details["path"][0] == info.value.details["path"][-1]


if sys.platform == "win32":  # pragma: no cover
    pytestmark = pytest.mark.skip("POSIX only")


_SECRET = "Zq9-Secret-Xy"


def _password_forms(host: str, db: str) -> list:
    return [
        f"postgres://postgres:{_SECRET}@{host}/{db}",
        f"postgres://postgres@{host}/{db}?password={_SECRET}",
        f"postgresql://postgres@{host}/{db}?sslmode=disable&password={_SECRET}&application_name=t",
        f"postgres://postgres:Zq9%40Secret-Xy@{host}/{db}",
    ]


def _leaks(text: str) -> bool:
    return _SECRET in text or "Zq9@Secret-Xy" in text or "Zq9%40Secret" in text


@pytest.mark.skipif(not os.environ.get("TASKER_TEST_PG_URL"), reason="needs TASKER_TEST_PG_URL (cargo xtask test-all)")
def test_passwords_in_every_url_form_never_reach_repr_health_or_errors() -> None:
    head, db = os.environ["TASKER_TEST_PG_URL"].rsplit("/", 1)
    host = head.split("@")[-1].removeprefix("postgres://")
    for url in _password_forms(host, db):
        with Client.connect(url) as c:
            health = c.health()
            shown = f"{c!r} {health!r} {health.url} {health.to_dict()}"
            assert not _leaks(shown) and "***" in health.url, shown
    # Nothing listens on port 1: the connection error names the target without the password.
    for url in _password_forms("127.0.0.1:1", db):
        with pytest.raises(tasker_core.DatabaseError) as info:
            Client.connect(url)
        assert not _leaks(f"{info.value} {info.value!r} {getattr(info.value, 'details', '')}"), str(info.value)
