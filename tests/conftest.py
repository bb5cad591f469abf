"""Test tiers.

- unmarked: pure tests, run anywhere without root.
- ``host_root``: root on the host, outside any testbed (they drive packaging/testbed itself).
- ``systemd``: root inside a real systemd; ``packaging/test.sh`` runs them in packaging/testbed,
  and a developer runs one with ``packaging/testbed run -- .venv/bin/pytest -m systemd -k NAME``.
- ``real_host``: root on a real host, systemd the real PID 1 on cgroup v2 (what users run);
  ``packaging/test.sh`` runs them in a Debian 12 VM, and so does a developer:
  ``packaging/vm run -- .venv/bin/pytest -m real_host``. Inside the VM (HOSTD_VM=1) an unmet
  requirement always fails: there nothing may skip.

Outside their place these tests skip, unless ``HOSTD_NO_SKIP=1`` (set by packaging/test.sh, so
in CI): then a missing requirement, or any skip at all, is a failure.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

NO_SKIP = os.environ.get("HOSTD_NO_SKIP") == "1"
INSIDE_TESTBED = "HOSTD_TESTBED" in os.environ
INSIDE_VM = os.environ.get("HOSTD_VM") == "1"  # packaging/vm run sets it


def pid1_is_systemd() -> bool:
    try:
        return Path("/proc/1/comm").read_text().strip() == "systemd"
    except OSError:
        return False


def on_real_host() -> bool:
    """systemd the real PID 1 on the unified hierarchy (cgroup v2), not a testbed's namespace."""
    return (
        pid1_is_systemd()
        and not INSIDE_TESTBED
        and Path("/sys/fs/cgroup/cgroup.controllers").exists()
    )


def _unmet(item: pytest.Item) -> str | None:
    if item.get_closest_marker("real_host"):
        if os.geteuid() != 0:
            return "needs root on a real host (packaging/vm runs it as root)"
        if not on_real_host():
            return (
                "needs a real host: systemd the real PID 1 on cgroup v2; run inside the "
                "Debian 12 VM: packaging/vm run -- .venv/bin/pytest -m real_host"
            )
    if item.get_closest_marker("systemd"):
        if os.geteuid() != 0:
            return "needs root inside a real systemd"
        if not pid1_is_systemd():
            return "needs systemd as PID 1: run inside packaging/testbed"
    if item.get_closest_marker("host_root"):
        if os.geteuid() != 0:
            return "needs root on the host"
        if INSIDE_TESTBED:
            return "drives packaging/testbed itself: run on the host, not inside a testbed"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    reason = _unmet(item)
    if reason is None:
        return
    if NO_SKIP:
        pytest.fail(f"{reason} (HOSTD_NO_SKIP=1: this may not skip)", pytrace=False)
    if INSIDE_VM:
        pytest.fail(f"{reason} (inside packaging/vm: this may not skip)", pytrace=False)
    pytest.skip(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if NO_SKIP and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under HOSTD_NO_SKIP=1: {report.longrepr}"


@pytest.fixture(autouse=True)
def _restore_umask() -> Iterator[None]:
    """``hostd-hub`` sets umask 077 for its files; run in-process it would leak into every later
    test (seen: a testbed started afterwards could not boot)."""
    saved = os.umask(0o022)
    os.umask(saved)
    yield
    os.umask(saved)


@pytest.fixture(autouse=True)
def _restore_signal_handlers() -> Iterator[None]:
    """uvicorn, run in-process by some tests, replaces SIGINT/SIGTERM handlers while it serves;
    a test that ends mid-serve could leave them, and a later test's Ctrl-C would never arrive
    as KeyboardInterrupt (seen: a hang). Each test starts from the handlers the session had."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        if signal.getsignal(sig) is not handler:
            signal.signal(sig, handler)
