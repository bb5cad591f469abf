"""units.failures: why a session ended, and its OOM kills, in words."""

from __future__ import annotations

import signal

import pytest

from hostd.units import failures
from hostd.units.failures import (
    CLD_DUMPED,
    CLD_EXITED,
    CLD_KILLED,
    describe_end,
    describe_oom_kills,
    exit_kind,
)


@pytest.mark.parametrize(
    ("result", "code", "status", "text"),
    [
        ("oom-kill", CLD_KILLED, 9, "killed: out of memory (MemoryMax reached)"),
        ("signal", CLD_KILLED, int(signal.SIGKILL), "killed by SIGKILL (often: out of memory)"),
        ("core-dump", CLD_DUMPED, int(signal.SIGSEGV), "killed by SIGSEGV, core dumped"),
        ("signal", CLD_KILLED, 99, "killed by signal 99"),
        ("exit-code", CLD_EXITED, 203, "exit status 203 (EXEC: the command could not be "
         "executed (missing or not executable))"),
        ("exit-code", CLD_EXITED, 3, "exit status 3"),
        ("timeout", None, None, "timed out"),
        (None, None, None, "result unknown"),
    ],
)  # fmt: skip
def test_describe_end(result: str | None, code: int | None, status: int | None, text: str) -> None:
    assert describe_end(result, code, status) == text


def test_exit_kind() -> None:
    assert [exit_kind(code) for code in (CLD_EXITED, CLD_KILLED, CLD_DUMPED, None, 7)] == [
        "exited",
        "killed",
        "dumped",
        None,
        None,
    ]


@pytest.mark.parametrize(
    ("kills", "text"),
    [
        (None, None),
        (0, None),
        (-1, None),
        (1, "kernel killed: out of memory (1 process)"),
        (3, "kernel killed: out of memory (3 processes)"),
    ],
)
def test_describe_oom_kills(kills: int | None, text: str | None) -> None:
    assert describe_oom_kills(kills) == text


def test_exports() -> None:
    assert all(hasattr(failures, name) for name in failures.__all__)
