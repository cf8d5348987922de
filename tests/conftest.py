"""Tests that drive native code which can crash (llama.cpp) run in a child process.

The tests marked `@pytest.mark.native("llama.cpp")` run together in one child pytest process (a fresh
interpreter, not a fork: torch's and llama.cpp's OpenMP thread pools hang in a forked child). The child writes
every report to a file as it goes; the parent replays them in place, so the run reads as usual. When the child
dies by a signal (a segfault in llama.cpp's kernels, docs/llamacpp.md), the test it was running fails with one
report naming the engine, the signal and this CPU's flags, and a new child runs the native tests left.

In the parent, loading a llama.cpp model outside such a test is refused, so every test that drives llama.cpp is
isolated, not only the ones that remembered to be.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CHILD_ENV = "DIAGUIDE_NATIVE_CHILD_REPORTS"  # set in the child: the file its reports go to


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "native(engine): drives native code that can crash; runs in a child process (tests/conftest.py)"
    )
    if os.environ.get(CHILD_ENV):
        config.pluginmanager.register(_ChildWriter(config, Path(os.environ[CHILD_ENV])), "native-child-writer")
    elif hasattr(subprocess, "Popen"):
        config.pluginmanager.register(_NativeRunner(config), "native-runner")


class _ChildWriter:
    """In the child: every report, as soon as it is made, one JSON line in the report file."""

    def __init__(self, config, path: Path):
        self.config, self.path = config, path

    def _write(self, record: dict) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")

    def pytest_runtest_logstart(self, nodeid, location) -> None:
        self._write({"start": nodeid})

    def pytest_runtest_logreport(self, report) -> None:
        data = self.config.hook.pytest_report_to_serializable(config=self.config, report=report)
        self._write({"report": data})


def _cpu_line() -> str:
    try:
        from diaguide.machine import cpu_line

        return cpu_line()
    except Exception as exc:  # the report must not fail for want of a CPU description
        return f"CPU not read ({exc.__class__.__name__})"


class _NativeRunner:
    """In the parent: runs the native tests in child processes and replays their reports."""

    def __init__(self, config):
        self.config = config
        self.pending: list = []  # native items not yet run by a child
        self.reports: dict[str, list] = {}

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items) -> None:
        self.pending = [item for item in items if item.get_closest_marker("native") is not None]

    def _run_children(self, item) -> None:
        """Run the pending native tests, `item` first; a child that dies leaves the rest to the next one."""
        while self.pending and item.nodeid not in self.reports:
            batch = sorted(self.pending, key=lambda i: i is not item)
            with tempfile.TemporaryDirectory(prefix="native-tests-") as tmp:
                path = Path(tmp) / "reports.jsonl"
                cmd = [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    "--rootdir",
                    str(self.config.rootpath),
                ]
                env = {**os.environ, CHILD_ENV: str(path)}
                done = subprocess.run(
                    cmd + [i.nodeid for i in batch], cwd=self.config.rootpath, env=env, capture_output=True, text=True
                )
                records = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
            by_id = {i.nodeid: i for i in batch}
            started: list[str] = []
            for record in records:
                if "start" in record:
                    started.append(record["start"])
                    self.reports.setdefault(record["start"], [])
                else:
                    rep = self.config.hook.pytest_report_from_serializable(config=self.config, data=record["report"])
                    self.reports.setdefault(rep.nodeid, []).append(rep)
            finished = {n for n, reps in self.reports.items() if any(r.when == "teardown" for r in reps)}
            crashed = [n for n in started if n not in finished]
            if crashed or (not started and batch):
                victim = by_id.get(crashed[0]) if crashed else batch[0]
                self.reports[victim.nodeid] = [
                    *[r for r in self.reports.get(victim.nodeid, []) if r.when == "setup"],
                    _crash_report(victim, done.returncode, done.stderr),
                ]
                finished.add(victim.nodeid)
            self.pending = [i for i in self.pending if i.nodeid not in finished]

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item, nextitem):
        if item.get_closest_marker("native") is None:
            return None
        item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        self._run_children(item)
        for rep in self.reports.pop(item.nodeid, []):
            item.ihook.pytest_runtest_logreport(report=rep)
        # what the parent set up for earlier tests and the next one does not share (a module's fixtures) is torn
        # down here, as a test run in place would have done at its own teardown
        item.session._setupstate.teardown_exact(nextitem)
        item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True


def _crash_report(item, returncode: int, stderr: str):
    marker = item.get_closest_marker("native")
    engine = marker.args[0] if marker and marker.args else "native code"
    if returncode < 0:
        from diaguide.inference.probe import signal_name

        what = f"killed by {signal_name(-returncode)} (signal {-returncode})"
    else:
        tail = (stderr.strip().splitlines() or ["no output"])[-1][:300]
        what = f"child exited with status {returncode} before reporting ({tail})"
    message = f"native crash: {engine} {what} in {item.nodeid} on {_cpu_line()}"
    call = pytest.CallInfo.from_call(lambda: pytest.fail(message, pytrace=False), "call")
    return pytest.TestReport.from_item_and_call(item, call)


@pytest.fixture(autouse=True)
def _llama_only_in_a_child(request, monkeypatch):
    """Loading a llama.cpp model outside a `native` test fails the test instead of risking the whole run."""
    if os.environ.get(CHILD_ENV) or request.node.get_closest_marker("native") is not None:
        return
    try:
        import llama_cpp
    except ImportError:
        return

    def refuse(*args, **kwargs):
        raise AssertionError("this test loads a llama.cpp model: mark it @pytest.mark.native('llama.cpp')")

    # the class itself, so a caller holding its own reference to Llama or to load_llama is caught too
    monkeypatch.setattr(llama_cpp.Llama, "__init__", refuse)


@pytest.fixture
def safety_counts(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """{'safety': calls of the checker's apply_safety, 'derive': visits read by conditions} from here on; the
    checker is wrapped wherever a module holds it, the reading at `conditions._derive` (what `derive` does once per
    visit inside `facts_once`)."""
    from diaguide.knowledge import conditions
    from diaguide.safety import checker

    seen = {"safety": 0, "derive": 0}
    apply_safety, derive = checker.apply_safety, conditions._derive

    def counted_safety(*args, **kwargs):
        seen["safety"] += 1
        return apply_safety(*args, **kwargs)

    def counted_derive(*args, **kwargs):
        seen["derive"] += 1
        return derive(*args, **kwargs)

    for name, module in list(sys.modules.items()):
        if name.startswith("diaguide") and getattr(module, "apply_safety", None) is apply_safety:
            monkeypatch.setattr(module, "apply_safety", counted_safety)
    monkeypatch.setattr(conditions, "_derive", counted_derive)
    return seen
