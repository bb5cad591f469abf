"""hostd.cli.verify_restarts: a unit restarting over and over is a failure, never "active"
(issue 14, F4), judged from looks at its state and its journal, without a machine."""

from __future__ import annotations

from hostd.cli.verify import UnitState, format_report
from hostd.cli.verify_restarts import (
    SETTLE_S,
    SHOWN_LINES,
    judge_restart_loop,
    restart_looping,
    settled,
)

HUB = "hostd-hub.service"
HUB_CONFIG = "/etc/hostd/hub.toml"
NOW_US = 1_000_000_000


def look(active: str, sub: str, restarts: int | None = 0, since_s: float = 100.0) -> UnitState:
    return UnitState(
        HUB,
        "loaded",
        active,
        sub,
        "enabled",
        n_restarts=restarts,
        active_enter_us=NOW_US - int(since_s * 1e6),
    )


# What the hub writes when another process holds its port (seen in the testbed), then what
# uvicorn says after: its logger's name has "error" in it, on every line.
BIND_FAILED = [
    "INFO uvicorn.error: Waiting for application startup.",
    "INFO uvicorn.error: Application startup complete.",
    "ERROR uvicorn.error: [Errno 98] error while attempting to bind on address ('0.0.0.0', "
    "8000): address already in use",
    "INFO uvicorn.error: Waiting for application shutdown.",
    "INFO uvicorn.error: Application shutdown complete.",
]


def test_a_look_that_finds_it_waiting_to_restart_again_is_a_loop() -> None:
    assert restart_looping([look("active", "running", 1), look("activating", "auto-restart", 1)])
    assert restart_looping([look("activating", "auto-restart-queued", 3)])  # systemd >= 254
    # Died once, at its first start: watched one more round before it is called a loop...
    assert not restart_looping([look("activating", "auto-restart", 0)])


def test_a_unit_waiting_to_restart_when_the_watch_ends_fails() -> None:
    """...and never called "activating" when the watch ends there."""
    check = judge_restart_loop(
        [look("activating", "auto-restart", 0)], BIND_FAILED, hub_config=HUB_CONFIG
    )
    assert check is not None and check.status == "fail"
    assert check.detail == (
        "hostd-hub died and is waiting to restart: ERROR uvicorn.error: [Errno 98] error while "
        "attempting to bind on address ('0.0.0.0', 8000): address already in use"
    )


def test_a_restart_counter_that_grows_is_a_loop() -> None:
    """Each look may find it "active (running)", the second its start takes."""
    assert restart_looping([look("active", "running", 3, 0.5), look("active", "running", 4, 0.4)])


def test_a_steady_unit_is_no_loop() -> None:
    assert not restart_looping([look("active", "running", 2), look("active", "running", 2)])
    assert not restart_looping([look("active", "running")])
    assert not restart_looping([])
    # A socket or a slice has no counter.
    assert not restart_looping([look("active", "listening", None), look("active", "x", None)])


def test_settled() -> None:
    assert settled(look("active", "running", since_s=SETTLE_S), NOW_US)
    assert not settled(look("active", "running", since_s=1.0), NOW_US)  # may yet die
    assert not settled(look("activating", "start"), NOW_US)
    assert not settled(look("activating", "auto-restart"), NOW_US)
    assert not settled(look("activating", "auto-restart", 1, since_s=100.0), NOW_US)
    assert settled(look("inactive", "dead"), NOW_US)  # hostd.service before its socket's use
    assert settled(look("failed", "failed"), NOW_US)  # the ordinary unit check says so
    assert settled(UnitState(HUB, "not-found", "inactive", "dead"), NOW_US)


def test_the_hub_on_a_taken_port() -> None:
    looks = [look("active", "running", 6, 0.3), look("activating", "auto-restart", 7, 0.0)]
    check = judge_restart_loop(looks, BIND_FAILED, hub_config=HUB_CONFIG)
    assert check is not None
    assert (check.name, check.status) == ("unit hostd-hub.service", "fail")
    assert check.detail == (
        "hostd-hub is restarting over and over (7 restarts so far): ERROR uvicorn.error: "
        "[Errno 98] error while attempting to bind on address ('0.0.0.0', 8000): address "
        "already in use"
    )
    assert check.fix == (
        "another process holds the hub's port: set another port in /etc/hostd/hub.toml (or stop "
        "that process: ss -ltnp), then systemctl restart hostd-hub"
    )
    # The lines shown end with the reason's.
    assert check.log == tuple(BIND_FAILED[:3])
    report = format_report([check]).splitlines()
    assert report[0].startswith("FAIL  unit hostd-hub.service  hostd-hub is restarting over")
    assert report[2:5] == [f"                              | {line}" for line in BIND_FAILED[:3]]


# The next attempt's first lines, before its bind fails again.
STARTING_AGAIN = [
    "INFO hostd.hub: hub on http://127.0.0.1:8000",
    "INFO uvicorn.error: Started server process [11859]",
    "INFO uvicorn.error: Waiting for application startup.",
    "INFO uvicorn.error: Application startup complete.",
]


def test_the_reason_of_the_last_failure_while_the_next_attempt_starts() -> None:
    """Seen in CI: verify read the journal while the hub was starting again, and its newest five
    lines were all the new attempt's; the reason is the last failure's line, further back."""
    looks = [look("activating", "auto-restart", 1, 0.0), look("active", "running", 1, 0.1)]
    journal = STARTING_AGAIN + BIND_FAILED + STARTING_AGAIN
    check = judge_restart_loop(looks, journal, hub_config=HUB_CONFIG)
    assert check is not None
    assert check.detail == (
        "hostd-hub is restarting over and over (1 restart so far): " + BIND_FAILED[2]
    )
    assert "another process holds the hub's port" in check.fix
    assert check.log == (*STARTING_AGAIN[2:], *BIND_FAILED[:3])
    assert len(check.log) == SHOWN_LINES


def test_another_unit_or_cause_gets_the_journal_fix() -> None:
    looks = [
        UnitState("hostd.service", "loaded", "activating", "auto-restart", n_restarts=2),
    ]
    check = judge_restart_loop(looks, ["starting", "", "done"], hub_config=HUB_CONFIG)
    assert check is not None
    # No line reads like an error: the last one says what it can.
    assert check.detail == "hostd is restarting over and over (2 restarts so far): done"
    assert check.fix == (
        "journalctl -u hostd -n 50 says why; fix that, then systemctl restart hostd"
    )
    empty = judge_restart_loop(looks, [], hub_config=HUB_CONFIG)
    assert empty is not None and empty.detail.endswith(": its journal has no lines")
    assert empty.log == ()


def test_the_line_that_says_why() -> None:
    looks = [UnitState("hostd.service", "loaded", "activating", "auto-restart", n_restarts=2)]

    def reason(*journal: str) -> str:
        check = judge_restart_loop(looks, journal, hub_config=HUB_CONFIG)
        assert check is not None
        return check.detail.split(": ", 1)[1]

    python = ("Traceback (most recent call last):", '  File "x", line 1', "KeyError: 'x'", "bye")
    assert reason(*python) == "KeyError: 'x'"
    assert reason("hostd: /etc/hostd/hostd.toml: Permission denied", "stopping") == (
        "hostd: /etc/hostd/hostd.toml: Permission denied"
    )
    assert reason("CRITICAL no config", "INFO x.error: done") == "CRITICAL no config"


def test_no_verdict_for_a_steady_unit() -> None:
    steady = [look("active", "running", 1), look("active", "running", 1)]
    assert judge_restart_loop(steady, BIND_FAILED, hub_config=HUB_CONFIG) is None
    assert judge_restart_loop([], [], hub_config=HUB_CONFIG) is None
