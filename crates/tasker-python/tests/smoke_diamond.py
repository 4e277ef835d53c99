"""Packaging smoke test: run with plain `python` from a fresh venv where only the built wheel is installed.
It must import the installed tasker_core (not the source tree) and run a diamond workflow to completion."""

import sys
import tempfile

import tasker_core
from tasker_core import Client, Worker
from tasker_core import testing

assert "site-packages" in tasker_core.__file__, f"imported from the source tree: {tasker_core.__file__}"

with tempfile.TemporaryDirectory() as tmp:
    with Client.connect(f"sqlite://{tmp}/smoke.db") as client:
        (task,) = testing.diamond(client).tasks
        worker = Worker(client, concurrency=2)

        @worker.handler("testkit.noop")
        def noop(ctx):
            return {"step": ctx.step_name, "parents": sorted(ctx.dependency_results)}

        worker.run_until_idle()
        done = client.task(task.id)
        assert done.state == "complete", done.state
        end = [s for s in client.steps(task.id) if s.name == "end"][0]
        assert end.result == {"step": "end", "parents": ["left", "right"]}, end.result

print(f"tasker_core {tasker_core.__version__} on Python {sys.version.split()[0]}: diamond complete")
