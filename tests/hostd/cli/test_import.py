"""`hostctl import FILE`: a jupyterhub_config.py (seed 002's lines verbatim) and a TLJH
config.yaml carried into hostd.toml and hub.toml, as real files in a temporary directory; the
admin's Python never run; bad files refused without a traceback; a refused import writes
nothing. The imported policy agrees with HostdSpawner's check of the same jupyterhub_config.py
(a pure comparison: no daemon, no systemd)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from jupyterhub.objects import Hub, Server
from traitlets.config import PyFileConfigLoader

from hostd.api.spawner import HostdSpawner, policy_conflicts
from hostd.cli.hostctl import main
from hostd.cli.import_jupyterhub import read_jupyterhub_config
from hostd.cli.import_tljh import read_tljh_config
from hostd.cli.migrate_command import import_edit, import_plan
from hostd.config import Config, parse_config
from hostd.units.values import UNSUPPORTED_SPAWNER_OPTIONS, PolicyView
from tests.seeds import SEED_002, SEED_002_ON_HOSTD

TOP = Path(__file__).resolve().parents[3]
SHIPPED = TOP / "packaging" / "hostd.toml"
SHIPPED_HUB = TOP / "packaging" / "hub.toml"
Capture = pytest.CaptureFixture[str]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    daemon, hub = tmp_path / "etc" / "hostd.toml", tmp_path / "etc" / "hub.toml"
    daemon.parent.mkdir()
    shutil.copyfile(SHIPPED, daemon)
    shutil.copyfile(SHIPPED_HUB, hub)
    return {"daemon": daemon, "hub": hub}


def hostctl_import(files: dict[str, Path], path: Path, *extra: str) -> int:
    paths = ["--config", str(files["daemon"]), "--hub-config", str(files["hub"])]
    return main(["import", str(path), *paths, *extra])


def hostctl_import_set(files: dict[str, Path], key: str, value: str) -> int:
    """`hostctl config set`, to give the files a value of their own first."""
    paths = ["--config", str(files["daemon"]), "--hub-config", str(files["hub"])]
    return main(["config", "set", *paths, key, value])


def snapshot(files: dict[str, Path]) -> dict[str, bytes]:
    return {name: path.read_bytes() for name, path in files.items()}


@pytest.fixture
def installed_prefix() -> Iterator[Path]:
    """A stand-in for install.sh's /opt/hostd: the two programs [commands] singleuser names,
    root's 0755 like install.sh's. Not under tmp_path: that is 0700, and check-config fails a
    program no other user can reach."""
    top = Path(tempfile.mkdtemp(prefix="hostd-import-", dir="/var/tmp"))
    try:
        top.chmod(0o755)
        prefix = top / "opt-hostd"
        for program in ("bin/hostd-session-exec", "session/bin/jupyterhub-singleuser"):
            path = prefix / program
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            path.write_text("#!/bin/sh\n")
            path.chmod(0o755)
        yield prefix
    finally:
        shutil.rmtree(top)


def seed_on_this_machine(tmp_path: Path) -> str:
    """Seed 002 with its two shared directories under tmp_path (they must exist: check-config
    refuses bound paths that do not), every other line as it is."""
    for name in ("shared-data", "notebook-outputs"):
        (tmp_path / name).mkdir()
    return SEED_002_ON_HOSTD.replace("/opt/shared-data", str(tmp_path / "shared-data")).replace(
        "/shared/notebook-outputs", str(tmp_path / "notebook-outputs")
    )


def daemon_policy(config: Config) -> PolicyView:
    """What the daemon answers on GET /v1/policy for this config (hostd.daemon.sessions)."""
    return PolicyView.of(config.session, commands=config.commands, config_file="hostd.toml")


def spawner_for(config_py: Path) -> HostdSpawner:
    """HostdSpawner as JupyterHub makes it from this jupyterhub_config.py (loaded the way
    JupyterHub loads it: this test's own fixture, so running it is fine here)."""
    loaded = PyFileConfigLoader(config_py.name, path=str(config_py.parent)).load_config()
    assert loaded.JupyterHub.spawner_class == "hostd"
    spawner = HostdSpawner(
        user=SimpleNamespace(name="alice", url="/user/alice/", escaped_name="alice", id=7),
        hub=Hub(base_url="/hub/"),
        api_token="token",
        oauth_client_id="jupyterhub-user-alice",
        config=loaded,
    )
    spawner.server = Server(base_url="/user/alice/")
    return spawner


# -- seed 002: jupyterhub_config.py ----------------------------------------------------------


def test_seed_002_maps_every_systemdspawner_line(tmp_path: Path) -> None:
    plan = read_jupyterhub_config(SEED_002)
    carried = {s.key: s.value for s in plan.settings}
    assert carried == {
        "session.default_shell": "/bin/bash",
        "session.mem_limit": "2G",
        "session.cpu_limit": 1.0,
        "session.isolate_tmp": True,
        "session.isolate_devices": True,
        "session.disable_user_sudo": True,
        "session.unit_extra_properties": {"RuntimeDirectoryPreserve": "no"},
        "session.user_workingdir": "/shared/users/{USERNAME}",
        "session.readonly_paths": ["/opt/shared-data"],
        "session.readwrite_paths": ["/tmp", "/shared/notebook-outputs"],
    }
    # The repeated lines: the last one wins, as when JupyterHub runs the file.
    origins = {s.key: s.origin for s in plan.settings}
    assert origins["session.isolate_tmp"] == "line 15: c.SystemdSpawner.isolate_tmp"
    assert plan.not_carried == []
    assert plan.command_name == "singleuser"
    notes = "\n".join(plan.notes)
    assert 'line 1: c.JupyterHub.spawner_class: change it to "hostd"' in notes
    assert "line 19: c.JupyterHub.tornado_settings: JupyterHub's own" in notes


def test_the_imported_policy_is_what_hostdspawner_agrees_with(tmp_path: Path) -> None:
    """The issue's proof: seed 002's lines, spawner_class changed, then hostctl import is the
    one step. HostdSpawner's own check (policy_conflicts of what the config sets against GET
    /v1/policy) finds nothing; before the import it refuses the start."""
    config_py = tmp_path / "jupyterhub_config.py"
    config_py.write_text(SEED_002_ON_HOSTD)
    files = {"daemon": tmp_path / "hostd.toml", "hub": tmp_path / "hub.toml"}
    shutil.copyfile(SHIPPED, files["daemon"])
    shutil.copyfile(SHIPPED_HUB, files["hub"])
    spawner = spawner_for(config_py)
    asked = spawner._asked_policy()
    assert set(asked) == {
        "default_shell",
        "isolate_tmp",
        "isolate_devices",
        "disable_user_sudo",
        "unit_extra_properties",
        "user_workingdir",
        "readonly_paths",
        "readwrite_paths",
    }
    before = parse_config(files["daemon"].read_text())
    assert policy_conflicts(asked, daemon_policy(before)) != []  # the test can fail

    edited = import_edit(import_plan(config_py), files, check=False)  # /opt/shared-data ...
    new_text = {path.name: text for path, _, text in edited.changes}["hostd.toml"]
    after = parse_config(new_text)  # the daemon's own rules
    policy = daemon_policy(after)
    assert policy_conflicts(asked, policy) == []
    spawner._refuse_what_hostd_does_not_do()  # nothing it cannot do
    assert spawner.hostd_command in policy.commands
    singleuser = after.commands[spawner.hostd_command]
    assert singleuser[:2] == (
        "/opt/hostd/bin/hostd-session-exec",
        "/opt/hostd/session/bin/jupyterhub-singleuser",
    )
    # The limits a start asks for are within what the daemon gives (its caps default to them).
    assert after.session.mem_limit == spawner.mem_limit == 2 * 1024**3
    assert after.session.cpu_limit == spawner.cpu_limit == 1.0


def test_apply_writes_what_the_preview_showed_and_the_spawner_agrees(
    files: dict[str, Path], tmp_path: Path, capsys: Capture, installed_prefix: Path
) -> None:
    config_py = tmp_path / "jupyterhub_config.py"
    config_py.write_text(seed_on_this_machine(tmp_path))
    prefix = installed_prefix
    before = snapshot(files)

    assert hostctl_import(files, config_py, "--hostd-prefix", str(prefix)) == 0
    preview = capsys.readouterr().out
    assert snapshot(files) == before  # the default writes nothing
    assert f"--- {files['daemon']}" in preview
    assert '+mem_limit = "2G"' in preview
    assert '+unit_extra_properties = {RuntimeDirectoryPreserve = "no"}' in preview
    assert "to write it: the same command with --apply" in preview

    assert hostctl_import(files, config_py, "--hostd-prefix", str(prefix), "--apply") == 0
    applied = capsys.readouterr().out
    assert f"wrote {files['daemon']}; apply: hostctl reload" in applied
    assert files["hub"].read_bytes() == before["hub"]  # nothing of the hub's in seed 002
    text = files["daemon"].read_text()
    assert "# sudo and setuid cannot elevate" in text  # the admin's comments stay
    config = parse_config(text)
    spawner = spawner_for(config_py)
    assert policy_conflicts(spawner._asked_policy(), daemon_policy(config)) == []
    assert config.commands["singleuser"] == (
        str(prefix / "bin/hostd-session-exec"),
        str(prefix / "session/bin/jupyterhub-singleuser"),
        "--ip=127.0.0.1",
        "--port={PORT}",
    )

    # Again: nothing left to change.
    assert hostctl_import(files, config_py, "--hostd-prefix", str(prefix), "--apply") == 0
    assert "nothing to change" in capsys.readouterr().out


def test_listen_socket_writes_the_readmes_socket_command(
    files: dict[str, Path], tmp_path: Path, capsys: Capture, installed_prefix: Path
) -> None:
    config_py = tmp_path / "jupyterhub_config.py"
    config_py.write_text(seed_on_this_machine(tmp_path))
    prefix = installed_prefix
    argv = ["--hostd-prefix", str(prefix), "--listen", "socket", "--apply"]
    assert hostctl_import(files, config_py, *argv) == 0
    command = parse_config(files["daemon"].read_text()).commands["singleuser"]
    assert command[2:] == (
        "--ServerApp.sock={SOCKET}",
        "--ServerApp.sock_mode=0660",
        "--ServerApp.port=8888",
    )


def test_an_import_check_config_refuses_writes_nothing(
    files: dict[str, Path], tmp_path: Path, capsys: Capture
) -> None:
    """Seed 002 verbatim on a machine without /opt/shared-data nor hostd installed under
    --hostd-prefix: refused with check-config's reasons, both files byte for byte as before."""
    config_py = tmp_path / "jupyterhub_config.py"
    config_py.write_text(SEED_002_ON_HOSTD)
    before = snapshot(files)
    missing = tmp_path / "not-installed"
    assert not Path("/opt/shared-data").exists()
    code = hostctl_import(files, config_py, "--hostd-prefix", str(missing), "--apply")
    out, err = capsys.readouterr()
    assert code == 1
    assert snapshot(files) == before
    assert "refused, nothing written: the result does not pass hostctl check-config" in err
    assert "/opt/shared-data missing" in err
    assert f"{missing}/bin/hostd-session-exec does not exist" in err
    assert '+readonly_paths = ["/opt/shared-data"]' in out  # the diff is shown all the same
    assert "Traceback" not in out + err


def test_an_existing_singleuser_command_is_kept(
    files: dict[str, Path], tmp_path: Path, capsys: Capture
) -> None:
    mine = (
        '["/usr/local/bin/hostd-session-exec", "/usr/bin/jupyterhub-singleuser", "--port={PORT}"]'
    )
    text = files["daemon"].read_text().replace("[commands]\n", f"[commands]\nsingleuser = {mine}\n")
    files["daemon"].write_text(text)
    config_py = tmp_path / "jupyterhub_config.py"
    config_py.write_text(SEED_002_ON_HOSTD)
    hostctl_import(files, config_py)
    assert "commands.singleuser: kept as hostd.toml has it" in capsys.readouterr().out


# -- what is not carried over ---------------------------------------------------------------


def test_the_admins_python_is_never_run(tmp_path: Path, capsys: Capture) -> None:
    marker = tmp_path / "ran"
    config_py = tmp_path / "jupyterhub_config.py"
    config_py.write_text(
        textwrap.dedent(f"""\
            import os, sys
            c = get_config()
            open({str(marker)!r}, "w").write("ran")
            c.Spawner.environment = {{"X": open({str(marker)!r}, "w").write("ran")}}
            c.SystemdSpawner.mem_limit = os.environ.get("MEM", "1G")
            c.JupyterHub.services = [
                {{"name": "idle-culler",
                  "command": [sys.executable, "-m", "jupyterhub_idle_culler", "--timeout=3600",
                              "--cull-every", "300", "--max-age=86400"]}},
            ]
            for name in ["a"]:
                c.Authenticator.admin_users = {{name}}
            c.Authenticator.admin_users = {{"alice", "bob"}}
            c.SystemdSpawner.dynamic_users = True
            c.Spawner.cmd = ["/usr/bin/jupyter-labhub"]
            c.Spawner.default_url = "/lab"
            c.JupyterHub.port = 8443
            c.SystemdSpawner.extra_paths = ["/opt/conda/bin"]
            c.Spawner.notebook_dir = "~/notebooks"
            """)
    )
    plan = import_plan(config_py)
    assert not marker.exists()
    carried = {s.key: s.value for s in plan.settings}
    assert carried == {
        "capacity.idle_timeout": 3600,
        "auth.admin_users": ["alice", "bob"],
        "hub.port": 8443,
    }
    left = {item.origin: item.reason for item in plan.not_carried}
    (line_3,) = [origin for origin in left if origin.startswith("line 3: open(")]
    assert left[line_3].startswith("not a `c.Class.option = value` line")
    assert "is not a literal" in left["line 4: c.Spawner.environment"]
    assert "os.environ.get('MEM', '1G')" in left["line 5: c.SystemdSpawner.mem_limit"]
    assert "line 11: for name in ['a']:" in "\n".join(left)
    assert left["line 14: c.SystemdSpawner.dynamic_users"] == (
        f"{UNSUPPORTED_SPAWNER_OPTIONS['dynamic_users']}; HostdSpawner refuses a start while it "
        "is set: remove the line"
    )
    assert "extra_paths" in "\n".join(left)
    assert "[commands] singleuser" in left["line 15: c.Spawner.cmd"]
    assert left["line 6: c.JupyterHub.services --cull-every"].startswith("hostd checks")
    assert "never busy ones by age" in left["line 6: c.JupyterHub.services --max-age"]
    assert "no hostd equivalent" in left["line 19: c.Spawner.notebook_dir"]
    assert "line 16: c.Spawner.default_url: JupyterHub's own" in "\n".join(plan.notes)


def test_hostdspawner_refuses_what_import_leaves_out_with_the_same_words(tmp_path: Path) -> None:
    config_py = tmp_path / "jupyterhub_config.py"
    config_py.write_text('c.JupyterHub.spawner_class = "hostd"\nc.SystemdSpawner.slice = "x"\n')
    reason = {i.origin: i.reason for i in import_plan(config_py).not_carried}
    assert reason["line 2: c.SystemdSpawner.slice"].startswith(UNSUPPORTED_SPAWNER_OPTIONS["slice"])
    with pytest.raises(Exception, match=re.escape(UNSUPPORTED_SPAWNER_OPTIONS["slice"])):
        spawner_for(config_py)._refuse_what_hostd_does_not_do()


# -- TLJH config.yaml -----------------------------------------------------------------------


TLJH_CONFIG = """\
users:
  admin:
    - alice
  allowed:
    - bob
    - jupyter-carol
  banned:
    - mallory
limits:
  memory: 4G
  cpu: 2
services:
  cull:
    timeout: 3600
    every: 120
    users: true
https:
  enabled: true
  tls:
    cert: /etc/ssl/hub.crt
    key: /etc/ssl/hub.key
user_environment:
  default_app: classic
"""


def test_tljh_config_maps_limits_users_culling_and_tls() -> None:
    plan = read_tljh_config(TLJH_CONFIG)
    assert {s.key: s.value for s in plan.settings} == {
        "session.mem_limit": "4G",
        "session.cpu_limit": 2,
        "auth.admin_users": ["jupyter-alice"],
        "daemon.allowed_users": ["jupyter-bob", "jupyter-carol"],
        "capacity.idle_timeout": 3600,
        "hub.port": 443,
        "hub.ssl_cert": "/etc/ssl/hub.crt",
        "hub.ssl_key": "/etc/ssl/hub.key",
    }
    left = {item.origin: item.reason for item in plan.not_carried}
    assert set(left) == {
        "users.banned",
        "services.cull.every",
        "services.cull.users",
        "user_environment.default_app",
    }
    assert "usermod -L" in left["users.banned"]
    assert plan.command_name is None  # TLJH's JupyterHub goes: no [commands] needed


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("", {"capacity.idle_timeout": 600, "hub.port": 80}),  # TLJH's defaults
        (
            "services: {cull: {enabled: false}}\nhttp: {port: 8080}\n",
            {"capacity.idle_timeout": 0, "hub.port": 8080},
        ),
        (
            "https:\n  enabled: true\n  letsencrypt:\n    email: a@example.org\n"
            "    domains: [hub.example.org]\n",
            {
                "capacity.idle_timeout": 600,
                "hub.port": 443,
                "hub.acme_domains": ["hub.example.org"],
                "hub.acme_email": "a@example.org",
                "hub.http_port": 80,
            },
        ),
    ],
)
def test_tljh_defaults_and_lets_encrypt(yaml_text: str, expected: dict[str, object]) -> None:
    assert {s.key: s.value for s in read_tljh_config(yaml_text).settings} == expected


def test_tljh_import_applies_to_both_files(
    files: dict[str, Path], tmp_path: Path, capsys: Capture
) -> None:
    config_yaml = tmp_path / "config.yaml"
    cert, key = tmp_path / "hub.crt", tmp_path / "hub.key"
    cert.write_text("x")
    key.write_text("x")
    config_yaml.write_text(
        TLJH_CONFIG.replace("/etc/ssl/hub.crt", str(cert)).replace("/etc/ssl/hub.key", str(key))
    )
    assert hostctl_import(files, config_yaml, "--apply") == 0
    out = capsys.readouterr().out
    assert "wrote" in out and str(files["hub"]) in out and str(files["daemon"]) in out
    config = parse_config(files["daemon"].read_text())
    assert config.session.mem_limit == 4 * 1024**3
    assert config.auth.admin_users == ("jupyter-alice",)
    assert config.capacity.idle_timeout_s == 3600
    hub = files["hub"].read_text()
    assert "port = 443" in hub and f'ssl_cert = "{cert}"' in hub


def test_tljh_admins_are_added_to_the_files_own(files: dict[str, Path], tmp_path: Path) -> None:
    assert hostctl_import_set(files, "auth.admin_users", '["root2"]') == 0
    config_yaml = tmp_path / "config.yaml"
    config_yaml.write_text("users: {admin: [alice]}\n")
    assert hostctl_import(files, config_yaml, "--apply") == 0
    assert parse_config(files["daemon"].read_text()).auth.admin_users == (
        "root2",
        "jupyter-alice",
    )


# -- bad files: a clear refusal, never a traceback -----------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("jupyterhub_config.py", b"c.Spawner.mem_limit = (\n", "is not valid Python (line 1"),
        ("jupyterhub_config.py", b"\x00\x01\x02binary", "holds NUL bytes"),
        ("jupyterhub_config.py", b"\xff\xfe\x00junk\x80", "is not UTF-8 text"),
        ("config.yaml", b"users: [admin\n", "is not valid YAML"),
        ("config.yaml", b"- a\n- b\n", "is not TLJH's config.yaml"),
        ("config.yml", os.urandom(64) + b"\xff", "is not UTF-8 text"),
        ("hostd.conf", b"x = 1\n", "unknown format of"),
    ],
)
def test_a_bad_file_is_refused_clearly(
    files: dict[str, Path],
    tmp_path: Path,
    capsys: Capture,
    name: str,
    content: bytes,
    message: str,
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    before = snapshot(files)
    assert hostctl_import(files, path, "--apply") == 1
    out, err = capsys.readouterr()
    assert message in err
    assert err.startswith("hostctl import: ")
    assert "Traceback" not in out + err
    assert snapshot(files) == before


def test_a_missing_file_or_a_directory_is_refused(
    files: dict[str, Path], tmp_path: Path, capsys: Capture
) -> None:
    assert hostctl_import(files, tmp_path / "nope.py") == 1
    assert "nope.py: no such file" in capsys.readouterr().err
    (tmp_path / "dir.py").mkdir()
    assert hostctl_import(files, tmp_path / "dir.py") == 1
    assert "is a directory" in capsys.readouterr().err


def test_format_names_a_file_with_another_name(
    files: dict[str, Path], tmp_path: Path, capsys: Capture, installed_prefix: Path
) -> None:
    path = tmp_path / "hub-settings"
    path.write_text("c.SystemdSpawner.cpu_limit = 2.0\n")
    prefix = ["--hostd-prefix", str(installed_prefix)]
    assert hostctl_import(files, path, "--format", "jupyterhub", *prefix) == 0
    assert "session.cpu_limit = 2.0 (was unset)" in capsys.readouterr().out


def test_a_value_hostd_refuses_is_named(
    files: dict[str, Path], tmp_path: Path, capsys: Capture
) -> None:
    path = tmp_path / "jupyterhub_config.py"
    path.write_text("c.SystemdSpawner.mem_limit = 'lots'\nc.SystemdSpawner.cpu_limit = None\n")
    before = snapshot(files)
    assert hostctl_import(files, path, "--apply") == 1
    out, err = capsys.readouterr()
    assert "session.mem_limit" in err and "lots" in err
    assert "None is not a value TOML can hold" in out
    assert snapshot(files) == before


@pytest.mark.parametrize(
    ("line", "carried", "left"),
    [
        (
            "c.JupyterHub.bind_url = 'http://10.0.0.5:8443/'",
            {"hub.ip": "10.0.0.5", "hub.port": 8443},
            False,
        ),
        ("c.JupyterHub.bind_url = 'http://:8000/jupyter/'", {}, True),  # a base URL
        ("c.JupyterHub.bind_url = 'unix:///run/jh.sock'", {}, True),
    ],
)
def test_bind_url_carries_the_hubs_address(
    line: str, carried: dict[str, object], left: bool
) -> None:
    plan = read_jupyterhub_config(line + "\n")
    assert {s.key: s.value for s in plan.settings} == carried
    assert bool(plan.not_carried) == left


def test_a_yaml_structure_that_refers_to_itself_is_refused(
    files: dict[str, Path], tmp_path: Path, capsys: Capture
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("limits: &a\n  memory: 4G\n  loop: *a\n")
    assert hostctl_import(files, path) == 1
    out, err = capsys.readouterr()
    assert "nested deeper than" in err and "Traceback" not in out + err
