"""packaging/testbed's pure parts, on the host without booting anything (its boots are
test_testbed.py's, as root)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

TESTBED = Path(__file__).resolve().parents[2] / "packaging" / "testbed"


def load() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("hostd_packaging_testbed", str(TESTBED))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module  # its dataclasses look their module up there
    loader.exec_module(module)
    return module


testbed = load()


def test_a_boot_whose_init_died_is_not_up_and_raises_nothing() -> None:
    # A failed boot (test_a_failed_boot_prints_the_boot_log_and_cleans_up) raced here once: the
    # init had exited between the check of its parent and the read of /proc/PID/comm, and the
    # testbed died of FileNotFoundError instead of reporting the failed boot.
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert testbed.system_is_up(gone.pid) is False
