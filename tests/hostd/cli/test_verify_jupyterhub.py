"""hostctl verify's judgements of install.sh --jupyterhub's mode (hostd.cli.verify_jupyterhub),
from facts made by hand; the systemd tier's tests/packaging/test_install_jupyterhub.py checks
them on an installed machine."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from hostd.cli.verify import Check, UnitState
from hostd.cli.verify_jupyterhub import JupyterHubFacts, judge_jupyterhub
from hostd.cli.verify_jupyterhub_host import UNIT_MARK, jupyterhub_mode

TOP = Path(__file__).resolve().parents[3]
EXEC = "/opt/hostd/bin/hostd-session-exec"
SINGLEUSER = "/opt/hostd/session/bin/jupyterhub-singleuser"
HEALTHY = JupyterHubFacts(
    unit=UnitState("jupyterhub.service", "loaded", "active", "running", "enabled"),
    restarts=0,
    hub_unit=UnitState("hostd-hub.service", "loaded", "inactive", "dead", "disabled"),
    user_groups=frozenset({"jupyterhub", "hostd", "hostd-proxy", "shadow"}),
    socket_group="hostd",
    proxy_group="hostd-proxy",
    act_for_others=("hostd-hub", "jupyterhub"),
    config_file="/etc/hostd/hostd.toml",
    singleuser=(EXEC, SINGLEUSER, "--ServerApp.sock={SOCKET}"),
    runnable={EXEC: True, SINGLEUSER: True},
    spawner=(True, "/opt/hostd/jupyterhub: JupyterHub 6.1.1, HostdSpawner"),
)


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


def test_a_healthy_mode_passes_every_check() -> None:
    checks = judge_jupyterhub(HEALTHY)
    assert [(c.name, c.status) for c in checks] == [
        ("unit jupyterhub.service", "ok"),
        ("unit hostd-hub.service", "ok"),
        ("JupyterHub's user", "ok"),
        ("JupyterHub's singleuser", "ok"),
        ("JupyterHub's environment", "ok"),
    ]
    assert by_name(checks)["unit hostd-hub.service"].detail == (
        "inactive: jupyterhub.service serves instead"
    )


def test_a_restart_looping_jupyterhub_fails_even_while_it_reads_active() -> None:
    # Type=exec: between two crashes systemd shows it active (running); NRestarts tells.
    looping = replace(HEALTHY, restarts=3)
    check = by_name(judge_jupyterhub(looping))["unit jupyterhub.service"]
    assert check.status == "fail"
    assert "restart-looping (systemd restarted it 3 times)" in check.detail
    assert check.fix is not None and "journalctl -u jupyterhub.service" in check.fix
    waiting = replace(
        HEALTHY, unit=UnitState("jupyterhub.service", "loaded", "activating", "auto-restart")
    )
    assert by_name(judge_jupyterhub(waiting))["unit jupyterhub.service"].status == "fail"


def test_a_stopped_or_missing_jupyterhub_fails() -> None:
    stopped = replace(HEALTHY, unit=UnitState("jupyterhub.service", "loaded", "inactive", "dead"))
    assert by_name(judge_jupyterhub(stopped))["unit jupyterhub.service"].status == "fail"
    missing = replace(HEALTHY, unit=UnitState("jupyterhub.service", "not-found"))
    check = by_name(judge_jupyterhub(missing))["unit jupyterhub.service"]
    assert (check.status, check.detail) == ("fail", "not installed")


def test_hostd_hub_running_beside_it_fails() -> None:
    both = replace(
        HEALTHY, hub_unit=UnitState("hostd-hub.service", "loaded", "active", "running", "enabled")
    )
    check = by_name(judge_jupyterhub(both))["unit hostd-hub.service"]
    assert check.status == "fail"
    assert check.fix == "systemctl disable --now hostd-hub.service"


def test_the_user_must_be_in_each_group_and_act_for_others() -> None:
    no_shadow = replace(HEALTHY, user_groups=frozenset({"jupyterhub", "hostd", "hostd-proxy"}))
    check = by_name(judge_jupyterhub(no_shadow))["JupyterHub's user"]
    assert check.status == "fail" and "not in group shadow" in check.detail
    assert check.fix == "usermod -aG shadow jupyterhub; systemctl restart jupyterhub.service"
    alone = replace(HEALTHY, act_for_others=("hostd-hub",))
    check = by_name(judge_jupyterhub(alone))["JupyterHub's user"]
    assert check.status == "fail" and "act_for_others" in check.detail
    nobody = replace(HEALTHY, user_groups=None)
    assert by_name(judge_jupyterhub(nobody))["JupyterHub's user"].status == "fail"


def test_a_missing_singleuser_program_fails_before_any_spawn_does() -> None:
    # Issue 14's F3: without jupyterhub in the session environment every spawn exits 127.
    absent = replace(HEALTHY, runnable={EXEC: True, SINGLEUSER: False})
    check = by_name(judge_jupyterhub(absent))["JupyterHub's singleuser"]
    assert check.status == "fail"
    assert check.detail.startswith(f"{SINGLEUSER} missing or not executable")
    unset = replace(HEALTHY, singleuser=None, runnable={})
    check = by_name(judge_jupyterhub(unset))["JupyterHub's singleuser"]
    assert check.status == "fail" and "[commands] singleuser is not set" in check.detail


def test_a_spawner_that_does_not_import_fails() -> None:
    broken = replace(HEALTHY, spawner=(False, "ModuleNotFoundError: No module named 'hostd'"))
    check = by_name(judge_jupyterhub(broken))["JupyterHub's environment"]
    assert check.status == "fail" and "No module named 'hostd'" in check.detail


def test_the_mode_is_on_only_for_install_shs_own_unit(tmp_path: Path) -> None:
    shipped = TOP / "packaging" / "systemd" / "jupyterhub.service"
    assert shipped.read_text().splitlines()[0] == UNIT_MARK
    assert jupyterhub_mode(shipped)
    admins = tmp_path / "jupyterhub.service"
    admins.write_text("[Unit]\nDescription=an admin's own JupyterHub\n")
    assert not jupyterhub_mode(admins)
    assert not jupyterhub_mode(tmp_path / "absent.service")
