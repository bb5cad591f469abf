"""hostd.cli.verify: every verdict of `hostctl verify` from facts, without a machine to break."""

from __future__ import annotations

import stat
from functools import partial

import pytest

from hostd.cli.verify import (
    PROBE_MEMORY_MAX,
    Check,
    LimitProbe,
    PathFacts,
    UnitState,
    exit_status,
    format_report,
    judge_cgroup_shape,
    judge_config,
    judge_daemon_answer,
    judge_hub_user,
    judge_limits,
    judge_pam,
    judge_paths,
    judge_proxy_group,
    judge_scratch,
    judge_session_env,
    judge_socket,
    judge_tls,
    judge_units,
    parse_systemctl_show,
    summary,
)

SOCK = "/run/hostd/hostd.sock"
SHOW = """\
Id=hostd.socket
LoadState=loaded
ActiveState=active
SubState=listening
UnitFileState=enabled

Id=hostd.service
LoadState=loaded
ActiveState=active
SubState=running
UnitFileState=enabled

Id=jupyter.slice
LoadState=loaded
ActiveState=inactive
SubState=dead
UnitFileState=static

Id=hostd-hub.service
LoadState=loaded
ActiveState=active
SubState=running
UnitFileState=enabled
"""


def sock(mode: int, owner: str = "root", group: str = "hostd") -> PathFacts:
    return PathFacts(path=SOCK, mode=stat.S_IFSOCK | mode, owner=owner, group=group)


def units(**changes: dict[str, str]) -> dict[str, UnitState]:
    found = parse_systemctl_show(SHOW)
    for name, values in changes.items():
        unit = name.replace("_", "-").replace("-service", ".service").replace("-socket", ".socket")
        found[unit] = UnitState(unit, **values)
    return found


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


# -- units ----------------------------------------------------------------------------------


def test_parse_systemctl_show() -> None:
    parsed = parse_systemctl_show(SHOW)
    assert list(parsed) == ["hostd.socket", "hostd.service", "jupyter.slice", "hostd-hub.service"]
    assert parsed["hostd.socket"] == UnitState(
        "hostd.socket", "loaded", "active", "listening", "enabled"
    )
    assert parse_systemctl_show("") == {}
    assert parse_systemctl_show("LoadState=loaded\n") == {}  # no Id: not a unit
    # What verify watches a restarting unit by (a socket has no NRestarts: None).
    looped = parse_systemctl_show(
        "Id=hostd-hub.service\nNRestarts=7\nActiveEnterTimestampMonotonic=123456789\n"
    )["hostd-hub.service"]
    assert (looped.n_restarts, looped.active_enter_us) == (7, 123456789)
    assert (parsed["hostd.socket"].n_restarts, parsed["hostd.socket"].active_enter_us) == (None, 0)


def test_healthy_units() -> None:
    checks = judge_units(parse_systemctl_show(SHOW), hub_installed=True)
    assert [c.status for c in checks] == ["ok"] * 4
    assert [c.name for c in checks] == [
        "unit hostd.socket",
        "unit hostd.service",
        "unit jupyter.slice",
        "unit hostd-hub.service",
    ]
    assert checks[0].detail == "active (listening), enabled"
    assert checks[2].detail == "installed, inactive (active while sessions run)"


def test_the_hub_is_skipped_before_it_exists() -> None:
    hub = judge_units(parse_systemctl_show(SHOW), hub_installed=False)[-1]
    assert (hub.status, hub.detail) == ("skip", "this version has no hub (hostd-hub --help fails)")


def test_a_socket_that_does_not_listen_fails() -> None:
    found = parse_systemctl_show(SHOW)
    found["hostd.socket"] = UnitState("hostd.socket", "loaded", "inactive", "dead", "enabled")
    check = judge_units(found, hub_installed=True)[0]
    assert check.status == "fail"
    assert check.fix == (
        "systemctl start hostd.socket; then systemctl status hostd.socket; "
        "journalctl -u hostd.socket -n 50"
    )


def test_a_failed_service_fails_and_an_idle_one_warns() -> None:
    found = parse_systemctl_show(SHOW)
    found["hostd.service"] = UnitState("hostd.service", "loaded", "failed", "failed", "enabled")
    failed = judge_units(found, hub_installed=True)[1]
    assert (failed.status, failed.detail) == ("fail", "failed (failed), enabled")
    found["hostd.service"] = UnitState("hostd.service", "loaded", "inactive", "dead", "enabled")
    idle = judge_units(found, hub_installed=True)[1]
    assert idle.status == "warn"
    assert idle.detail.endswith("starts on the socket's first request")


def test_a_stopped_hub_fails_once_it_exists() -> None:
    found = parse_systemctl_show(SHOW)
    found["hostd-hub.service"] = UnitState(
        "hostd-hub.service", "loaded", "inactive", "dead", "enabled"
    )
    assert judge_units(found, hub_installed=True)[-1].status == "fail"


def test_a_missing_or_disabled_unit() -> None:
    found = parse_systemctl_show(SHOW)
    del found["jupyter.slice"]
    found["hostd.socket"] = UnitState("hostd.socket", "loaded", "active", "listening", "disabled")
    checks = by_name(judge_units(found, hub_installed=False))
    assert checks["unit jupyter.slice"].status == "fail"
    assert checks["unit jupyter.slice"].detail == "not installed (LoadState=unknown)"
    assert checks["unit hostd.socket"].status == "warn"
    assert checks["unit hostd.socket"].fix == "systemctl enable hostd.socket"


# -- socket and daemon ----------------------------------------------------------------------


def test_socket_ok() -> None:
    check = judge_socket(SOCK, sock(0o660), group="hostd")
    assert (check.status, check.detail) == ("ok", f"{SOCK} is root:hostd 0660")


@pytest.mark.parametrize(
    ("facts", "detail"),
    [
        (None, f"{SOCK} does not exist: hostd.socket is not listening"),
        (
            sock(0o666),
            f"{SOCK} is root:hostd 0666, expected root:hostd 0660: every local user can use the "
            "daemon",
        ),
        (
            sock(0o660, owner="nobody"),
            f"{SOCK} is nobody:hostd 0660, expected root:hostd 0660: the daemon's socket must be "
            "root's",
        ),
        (
            sock(0o660, group="root"),
            f"{SOCK} is root:root 0660, expected root:hostd 0660: group hostd cannot use it",
        ),
        (
            sock(0o600),
            f"{SOCK} is root:hostd 0600, expected root:hostd 0660: group hostd cannot use it",
        ),
        (
            PathFacts(SOCK, stat.S_IFREG | 0o660, "root", "hostd"),
            f"{SOCK} is not a socket",
        ),
    ],
)
def test_socket_failures(facts: PathFacts | None, detail: str) -> None:
    check = judge_socket(SOCK, facts, group="hostd")
    assert (check.status, check.detail) == ("fail", detail)
    assert check.fix is not None and "systemctl restart hostd.socket hostd.service" in check.fix


def test_daemon_answer() -> None:
    ok = judge_daemon_answer(SOCK, {"status": "ok", "sessions": 2, "versions": {}}, None)
    assert (ok.status, ok.detail) == ("ok", f"answers on {SOCK} (status ok, sessions 2)")
    bad = judge_daemon_answer(SOCK, None, "connection refused")
    assert (bad.status, bad.detail) == ("fail", f"no answer on {SOCK}: connection refused")


# -- config, PAM, programs, paths, scratch ---------------------------------------------------


def test_config() -> None:
    ok = judge_config("/etc/hostd/hostd.toml", description="0 options changed", problems=())
    assert (ok.status, ok.detail) == ("ok", "/etc/hostd/hostd.toml: 0 options changed")
    bad = judge_config(
        "/etc/hostd/hostd.toml",
        description=None,
        problems=[("session.mem_limit", "invalid size 'lots'"), ("daemon.x", "unknown key")],
    )
    assert bad.status == "fail"
    assert bad.detail == (
        "/etc/hostd/hostd.toml: session.mem_limit: invalid size 'lots'; daemon.x: unknown key"
    )


def test_pam() -> None:
    stack = "# comment\n@include common-auth\n@include common-account\n"
    assert judge_pam("/etc/pam.d/hostd", stack) == Check("PAM", "ok", "/etc/pam.d/hostd (2 rules)")
    assert judge_pam("/etc/pam.d/hostd", "auth required pam_unix.so\n").status == "ok"
    missing = judge_pam("/etc/pam.d/hostd", None)
    assert (missing.status, missing.detail) == (
        "fail",
        "/etc/pam.d/hostd is missing: nobody can log in to the hub",
    )
    empty = judge_pam("/etc/pam.d/hostd", "# only a comment\naccount required pam_unix.so\n")
    assert empty.detail == "/etc/pam.d/hostd has no auth line: nobody can log in to the hub"


def test_paths() -> None:
    checks = judge_paths(
        {
            "session.shared_paths": ("/srv/data", "/srv/gone"),
            "session.readonly_paths": ("/",),
            "session.readwrite_paths": ("/home/{USERNAME}",),  # per user: not checked
        },
        existing=["/srv/data", "/"],
    )
    assert [(c.name, c.status) for c in checks] == [
        ("paths session.shared_paths", "fail"),
        ("paths session.readonly_paths", "ok"),
    ]
    assert checks[0].detail == "/srv/gone missing: every session would fail to start"
    assert checks[0].fix == "mkdir -p /srv/gone (or remove them from session.shared_paths)"


def test_scratch() -> None:
    good = PathFacts("/srv/scratch", stat.S_IFDIR | 0o3775, "root", "users")
    assert judge_scratch(None, None, group="users", group_exists=True).status == "skip"
    ok = judge_scratch("/srv/scratch", good, group="users", group_exists=True)
    assert (ok.status, ok.detail) == (
        "ok",
        "/srv/scratch is root:users 3775, writable by group users",
    )
    no_group = judge_scratch("/srv/scratch", good, group="lab", group_exists=False)
    assert (no_group.status, no_group.fix) == ("fail", "groupadd lab")
    missing = judge_scratch("/srv/scratch", None, group="users", group_exists=True)
    assert missing.status == "fail"
    assert missing.fix == "systemctl restart hostd (it makes the directory)"
    closed = PathFacts("/srv/scratch", stat.S_IFDIR | 0o755, "root", "root")
    odd = judge_scratch("/srv/scratch", closed, group="users", group_exists=True)
    assert (odd.status, odd.fix) == ("warn", "chgrp users /srv/scratch && chmod 3775 /srv/scratch")
    a_file = PathFacts("/srv/scratch", stat.S_IFREG | 0o644, "root", "root")
    assert judge_scratch("/srv/scratch", a_file, group="users", group_exists=True).status == "fail"


# -- cgroups and the CPU quota ----------------------------------------------------------------

V1_OK = LimitProbe(
    version="v1",
    controllers={"memory": True, "cpu": True},
    files={
        "memory.limit_in_bytes": f"{PROBE_MEMORY_MAX}\n",
        "cpu.cfs_quota_us": "50000\n",
        "cpu.cfs_period_us": "100000\n",
    },
)
V2_OK = LimitProbe(
    version="v2",
    controllers={"memory": True, "cpu": True},
    files={"memory.max": f"{PROBE_MEMORY_MAX}\n", "cpu.max": "50000 100000\n"},
)


@pytest.mark.parametrize("probe", [V1_OK, V2_OK])
def test_limits_ok(probe: LimitProbe) -> None:
    cgroups, quota = judge_limits(probe)
    assert (cgroups.status, quota.status) == ("ok", "ok")
    assert cgroups.detail == (
        f"memory and cpu controllers in jupyter.slice (cgroup {probe.version}); MemoryMax= applied"
    )
    assert quota.detail == "CPUQuota=50% enforced by the kernel (50000 of 100000 us)"


def test_limits_when_the_probe_cannot_start() -> None:
    cgroups, quota = judge_limits(LimitProbe(error="Failed to start transient service unit"))
    assert cgroups.status == "fail"
    assert cgroups.detail.endswith("did not start: Failed to start transient service unit")
    assert quota.status == "skip"


def test_limits_without_the_controllers() -> None:
    probe = LimitProbe(version="v2", controllers={"memory": False, "cpu": False}, files={})
    cgroups, quota = judge_limits(probe)
    assert cgroups.status == "fail"
    assert cgroups.detail.startswith("no memory and cpu controller for units in jupyter.slice")
    assert quota.status == "fail"


def test_a_kernel_without_cpu_bandwidth_control() -> None:
    files = {**V1_OK.files, "cpu.cfs_quota_us": None, "cpu.cfs_period_us": None}
    cgroups, quota = judge_limits(LimitProbe("v1", V1_OK.controllers, files))
    assert cgroups.status == "ok"
    assert quota.status == "fail"
    assert "CONFIG_CFS_BANDWIDTH" in quota.detail


@pytest.mark.parametrize(
    "files",
    [
        {"memory.max": "max\n", "cpu.max": "50000 100000\n"},
        {"memory.max": f"{PROBE_MEMORY_MAX}\n", "cpu.max": "max 100000\n"},
        {"memory.max": f"{PROBE_MEMORY_MAX}\n", "cpu.max": "garbage"},
    ],
)
def test_limits_that_were_not_applied(files: dict[str, str]) -> None:
    cgroups, quota = judge_limits(LimitProbe("v2", V2_OK.controllers, files))
    assert "fail" in (cgroups.status, quota.status)


# -- session environment and hub user -------------------------------------------------------


def test_session_env() -> None:
    python = "/opt/hostd/session/bin/python"
    ok = judge_session_env(python, exists=True, returncode=0, output="4.2.5\n", user="nobody")
    assert ok.detail == f"{python} imports jupyterlab 4.2.5 as nobody"
    missing = judge_session_env(python, exists=False, returncode=None, output="", user="nobody")
    assert (missing.status, missing.detail) == ("fail", f"{python} is missing")
    broken = judge_session_env(
        python,
        exists=True,
        returncode=1,
        output="Traceback ...\nModuleNotFoundError: No module named 'jupyterlab'\n",
        user="nobody",
    )
    assert broken.status == "fail"
    assert broken.detail.endswith("failed: ModuleNotFoundError: No module named 'jupyterlab'")
    assert broken.fix == (
        "/opt/hostd/session/bin/pip install jupyterlab; chmod -R go+rX /opt/hostd/session"
    )


def test_hub_user() -> None:
    args = {"user": "hostd-hub", "socket_group": "hostd"}
    assert judge_hub_user(installed=False, exists=False, groups=(), **args).status == "skip"
    assert judge_hub_user(installed=True, exists=False, groups=(), **args).status == "fail"
    outside = judge_hub_user(installed=True, exists=True, groups=["hostd-hub"], **args)
    assert outside.fix == "usermod -aG hostd hostd-hub; systemctl restart hostd-hub"
    inside = judge_hub_user(installed=True, exists=True, groups=["hostd-hub", "hostd"], **args)
    assert (inside.status, inside.detail) == ("ok", "in group hostd")


def test_tls() -> None:
    crt, key = "/etc/hostd/tls/hub.crt", "/etc/hostd/tls/hub.key"
    cert = (crt, PathFacts(crt, stat.S_IFREG | 0o644, "root", "root"))

    def key_of(mode: int, owner: str = "root", group: str = "hostd-hub") -> tuple[str, PathFacts]:
        return key, PathFacts(key, stat.S_IFREG | mode, owner, group)

    def judge(
        c: tuple[str, PathFacts | None] | None,
        k: tuple[str, PathFacts | None] | None,
        self_signed: bool = False,
    ) -> Check:
        return judge_tls(c, k, hub_user="hostd-hub", self_signed=self_signed)

    assert judge(None, None).status == "skip"
    assert judge(cert, key_of(0o640)) == Check(
        "TLS", "ok", f"{crt}, key readable by hostd-hub only"
    )
    assert judge(cert, key_of(0o600, owner="hostd-hub", group="root")).status == "ok"
    assert judge(cert, key_of(0o640), self_signed=True).status == "warn"
    world = judge(cert, key_of(0o644))
    assert (world.status, world.detail) == (
        "fail",
        f"{key} is root:hostd-hub 0644: every local user can read the private key",
    )
    assert world.fix == f"chown root:hostd-hub {key} && chmod 0640 {key}"
    closed = judge(cert, key_of(0o600))
    assert closed.detail == f"{key} is root:hostd-hub 0600: hostd-hub cannot read it"
    missing = judge((crt, None), key_of(0o640))
    assert (missing.status, missing.detail) == (
        "fail",
        f"{crt} does not exist: the hub cannot start",
    )


def test_hub_config() -> None:
    ok = judge_config(
        "/etc/hostd/hub.toml", description="serves http://*:8000/", problems=(), hub=True
    )
    assert (ok.name, ok.detail) == ("hub config", "/etc/hostd/hub.toml: serves http://*:8000/")
    bad = judge_config(
        "/etc/hostd/hub.toml", description=None, problems=[("hub.port", "bad")], hub=True
    )
    assert bad.fix == (
        "fix it (hostd-hub --check-config --config /etc/hostd/hub.toml), "
        "then systemctl restart hostd-hub"
    )


# -- report ---------------------------------------------------------------------------------


def test_report_lines_fixes_and_summary() -> None:
    checks = [
        Check("config", "ok", "/etc/hostd/hostd.toml: fine"),
        Check("socket", "fail", "bad\nmode", "systemctl restart hostd.socket"),
        Check("scratch", "skip", "none", "not shown for a skip"),
        Check("unit hostd.service", "warn", "idle"),
        Check("unit hostd-hub.service", "fail", "looping", "fix it", log=("one", "two")),
        Check("daemon", "ok", "fine", log=("not shown when ok",)),
    ]
    assert format_report(checks).splitlines() == [
        "ok    config                  /etc/hostd/hostd.toml: fine",
        "FAIL  socket                  bad / mode",
        "                              fix: systemctl restart hostd.socket",
        "skip  scratch                 none",
        "WARN  unit hostd.service      idle",
        "FAIL  unit hostd-hub.service  looping",
        "                              fix: fix it",
        "                              | one",
        "                              | two",
        "ok    daemon                  fine",
        "hostctl verify: 2 of 5 checks FAILED (1 warning, 1 skipped)",
    ]
    assert exit_status(checks) == 1


def test_summary_when_all_pass() -> None:
    checks = [Check("a", "ok", ""), Check("b", "skip", "")]
    assert summary(checks) == "hostctl verify: all 1 checks passed (1 skipped)"
    assert summary(checks[:1], title="hostctl check-config") == (
        "hostctl check-config: all 1 checks passed"
    )
    assert exit_status(checks) == 0
    assert exit_status([Check("c", "warn", "")]) == 0


def test_the_proxy_group_must_exist_and_hold_only_the_hub() -> None:
    judge = partial(judge_proxy_group, group="hostd-proxy", hub_users=("hostd-hub",))
    assert judge(on_socket=False, members=None).status == "skip"
    missing = judge(on_socket=True, members=None)
    assert missing.status == "fail"
    assert missing.fix == "groupadd --system hostd-proxy && usermod -aG hostd-proxy hostd-hub"
    assert judge(on_socket=True, members=("hostd-hub",)) == Check(
        "proxy group", "ok", "group hostd-proxy: hostd-hub"
    )
    crowded = judge(on_socket=True, members=("alice", "hostd-hub"))
    assert crowded.status == "warn" and "alice" in crowded.detail
    assert crowded.fix == "gpasswd -d alice hostd-proxy"
    assert "no hub can reach" in judge(on_socket=True, members=()).detail


def test_the_cgroup_shape_says_what_v1_cannot_enforce() -> None:
    v2 = judge_cgroup_shape("v2", allow_swap=False, ip_address_deny=True)
    assert (v2.status, v2.detail) == (
        "ok",
        "cgroup v2 (unified): every limit hostd sets is enforced",
    )
    v1 = judge_cgroup_shape("v1", allow_swap=False, ip_address_deny=True)
    assert v1.status == "warn"
    assert "swap cap" in v1.detail and "ip_address_deny" in v1.detail
    assert v1.fix == "boot with systemd.unified_cgroup_hierarchy=1 (Debian 12's default)"
    only_ip = judge_cgroup_shape("v1", allow_swap=True, ip_address_deny=True)
    assert "swap" not in only_ip.detail and only_ip.status == "warn"
    assert judge_cgroup_shape("v1", allow_swap=True, ip_address_deny=False).status == "ok"
    assert judge_cgroup_shape(None, allow_swap=False, ip_address_deny=True).status == "skip"
