"""`hostctl config` and the checks of `hostctl reload`, on files in a temporary directory:
keys, aliases, typed values, comments kept, refused edits that write nothing, the lock across
processes, atomic writes. No systemd here (tests/packaging/test_install.py has the real one)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
import tomllib
from pathlib import Path

import pytest
import tomlkit

from hostd.cli import config_files, reload
from hostd.cli.config_edit import add_item, lookup, remove_item, render, set_value, unset
from hostd.cli.config_keys import ConfigKeyError, Key, mask_secrets, parse_key, parse_value
from hostd.cli.hostctl import main

TOP = Path(__file__).resolve().parents[3]
SHIPPED = TOP / "packaging" / "hostd.toml"
SHIPPED_HUB = TOP / "packaging" / "hub.toml"
Capture = pytest.CaptureFixture[str]


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    daemon, hub = tmp_path / "hostd.toml", tmp_path / "hub.toml"
    shutil.copyfile(SHIPPED, daemon)
    shutil.copyfile(SHIPPED_HUB, hub)
    return daemon, hub


def hostctl(files: tuple[Path, Path], *argv: str) -> int:
    action, rest = argv[0], argv[1:]
    return main(["config", action, "--config", str(files[0]), "--hub-config", str(files[1]), *rest])


# -- keys and values ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "file", "parts"),
    [
        ("daemon.port_range", "daemon", ("daemon", "port_range")),
        ("session.mem_limit", "daemon", ("session", "mem_limit")),
        ("auth.admin_users", "daemon", ("auth", "admin_users")),
        ("hub.port", "hub", ("hub", "port")),
        ("session", "daemon", ("session",)),
        ("commands.singleuser", "daemon", ("commands", "singleuser")),
        ("profiles.users.alice.mem_limit", "daemon", ("profiles", "users", "alice", "mem_limit")),
        ('session.environment."MY.VAR"', "daemon", ("session", "environment", "MY.VAR")),
        (
            "session.unit_extra_properties.TasksMax",
            "daemon",
            ("session", "unit_extra_properties", "TasksMax"),
        ),
    ],
)
def test_a_dotted_key_names_its_file_and_path(text: str, file: str, parts: tuple[str, ...]) -> None:
    key = parse_key(text)
    assert (key.file, key.parts, key.alias) == (file, parts, None)


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("limits.memory", "session.mem_limit"),
        ("limits.cpu", "session.cpu_limit"),
        ("users.admin", "auth.admin_users"),
        ("users.allowed", "daemon.allowed_users"),
        ("services.cull.timeout", "capacity.idle_timeout"),
        ("https.tls.cert", "hub.ssl_cert"),
        ("https.tls.key", "hub.ssl_key"),
    ],
)
def test_tljh_config_names_are_aliases(alias: str, canonical: str) -> None:
    key = parse_key(alias)
    assert (str(key), key.alias) == (canonical, alias)


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("session.mem_limt", "did you mean session.mem_limit"),
        ("hub.prot", "did you mean hub.port"),
        ("limits.memroy", "did you mean limits.memory"),
        ("daemon.socket_mode", "unknown key"),  # exists, but is not settable
        ("profiles.teams.x.mem_limit", "unknown key"),
        ("hub.port.x", "unknown key"),
    ],
)
def test_an_unknown_key_is_refused_with_the_names_near_it(text: str, hint: str) -> None:
    with pytest.raises(ConfigKeyError, match=hint):
        parse_key(text)


@pytest.mark.parametrize("text", ["", "session.", ".x", "session mem_limit", 'a."b'])
def test_a_malformed_key_is_refused(text: str) -> None:
    with pytest.raises(ConfigKeyError, match="not a dotted key"):
        parse_key(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4", 4),
        ("1.5", 1.5),
        ("true", True),
        ('"x"', "x"),
        ("'4G'", "4G"),
        ("[1, 2]", [1, 2]),
        ('["alice", "bob"]', ["alice", "bob"]),
        ("{ TasksMax = 512 }", {"TasksMax": 512}),
        ("4G", "4G"),
        ("alice", "alice"),
        ("/srv/data", "/srv/data"),
        ("domain users", "domain users"),
    ],
)
def test_a_value_is_toml_or_else_a_word(text: str, value: object) -> None:
    assert parse_value(text) == value
    assert type(parse_value(text)) is type(value)


@pytest.mark.parametrize("text", ["[1,", '"open', "{ a = }"])
def test_a_value_that_starts_as_toml_must_be_toml(text: str) -> None:
    with pytest.raises(ConfigKeyError, match="not a TOML value"):
        parse_value(text)


def test_url_passwords_are_masked() -> None:
    assert mask_secrets('db_url = "postgresql://hub:s3cret@db/hub"') == (
        'db_url = "postgresql://hub:***@db/hub"'
    )
    assert mask_secrets('db_url = "sqlite:////var/lib/x"') == 'db_url = "sqlite:////var/lib/x"'


# -- edits of one document ------------------------------------------------------------------


def test_an_edit_keeps_every_comment_and_the_comment_column() -> None:
    text = SHIPPED.read_text()
    document = tomlkit.parse(text)
    assert set_value(document, parse_key("daemon.start_timeout"), 90) == 60
    assert add_item(document, parse_key("auth.admin_users"), "alice")
    after = tomlkit.dumps(document)
    changed = [(a, b) for a, b in zip(text.splitlines(), after.splitlines(), strict=True) if a != b]
    assert changed == [
        (
            "start_timeout = 60                 # seconds a started session has to answer",
            "start_timeout = 90                 # seconds a started session has to answer",
        ),
        (
            'admin_users = []                   # e.g. ["alice"]: may see and manage every '
            "session in the hub",
            'admin_users = ["alice"]            # e.g. ["alice"]: may see and manage every '
            "session in the hub",
        ),
    ]


def test_a_new_key_goes_after_its_tables_last_key_not_under_the_next_sections_comments() -> None:
    document = tomlkit.parse(SHIPPED.read_text())
    set_value(document, parse_key("session.mem_limit"), "4G")
    lines = tomlkit.dumps(document).splitlines()
    at = lines.index('mem_limit = "4G"')
    assert lines[at - 1].startswith("unit_extra_properties = {}")
    assert tomllib.loads(tomlkit.dumps(document))["session"]["mem_limit"] == "4G"


def test_new_tables_are_made_with_one_header() -> None:
    document = tomlkit.parse("[session]\nmem_limit = '2G'\n")
    set_value(document, parse_key("profiles.users.alice.mem_limit"), "8G")
    assert tomlkit.dumps(document) == (
        "[session]\nmem_limit = '2G'\n\n[profiles.users.alice]\nmem_limit = \"8G\"\n"
    )


def test_lookup_unset_and_list_items() -> None:
    document = tomlkit.parse('[auth]\nadmin_users = ["alice"]\n')
    key = parse_key("auth.admin_users")
    assert lookup(document, key) == ["alice"]
    assert not add_item(document, key, "alice")
    assert add_item(document, key, "bob")
    assert remove_item(document, key, "alice")
    assert not remove_item(document, key, "carol")
    assert render(lookup(document, key)) == '["bob"]'
    assert unset(document, key) == ["bob"]
    assert unset(document, key) is None
    assert lookup(document, parse_key("session.mem_limit")) is None


def test_a_list_edit_of_a_value_that_is_not_a_list_is_refused() -> None:
    document = tomlkit.parse("[session]\nmem_limit = '2G'\n")
    with pytest.raises(ConfigKeyError, match="not a list"):
        add_item(document, parse_key("session.mem_limit"), "x")


# -- the command, on files --------------------------------------------------------------------


def test_set_writes_the_typed_value_and_says_how_to_apply(
    files: tuple[Path, Path], capsys: Capture
) -> None:
    assert hostctl(files, "set", "limits.memory", "4G", "limits.cpu", "2") == 0
    out = capsys.readouterr().out
    assert 'session.mem_limit (tljh-config\'s limits.memory) = "4G" (was unset)' in out
    assert "session.cpu_limit (tljh-config's limits.cpu) = 2 (was unset)" in out
    assert "apply: hostctl reload daemon" in out
    session = tomllib.loads(files[0].read_text())["session"]
    assert (session["mem_limit"], session["cpu_limit"]) == ("4G", 2)
    assert files[1].read_bytes() == SHIPPED_HUB.read_bytes()
    assert hostctl(files, "get", "session.mem_limit") == 0
    assert capsys.readouterr().out == '"4G"\n'


def test_hub_keys_go_to_hub_toml(files: tuple[Path, Path], capsys: Capture) -> None:
    assert hostctl(files, "set", "hub.port", "9000", "hub.admin_access", "true") == 0
    assert "apply: hostctl reload hub" in capsys.readouterr().out
    hub = tomllib.loads(files[1].read_text())["hub"]
    assert (hub["port"], hub["admin_access"]) == (9000, True)
    assert files[0].read_bytes() == SHIPPED.read_bytes()


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (("set", "session.mem_limit", "4X"), "session.mem_limit: invalid size '4X'"),
        (("set", "daemon.port_range", "[30000, 20000]"), "daemon.port_range"),
        (("set", "capacity.idle_timeout", "-5"), "capacity.idle_timeout"),
        (("set", "hub.port", "70000"), "hub.port"),
        (("set", "https.tls.cert", "/etc/x.crt"), "ssl_cert and ssl_key go together"),
        (("set", "auth.admin_users", "alice"), "auth.admin_users"),  # a string, not a list
        (("add-item", "auth.admin_users", "root;x"), "auth.admin_users"),
        (("set", "session.mem_limt", "4G"), "did you mean session.mem_limit"),
        (("add-item", "users.allowed", "root;x"), "daemon.allowed_users"),
        (("set", "session", "1"), "is a section"),
        (("set", "session.mem_limit"), "has no value"),
        (("remove-item", "auth.admin_users", "nobody"), "does not hold"),
    ],
)
def test_a_refused_edit_prints_why_and_leaves_the_files_byte_for_byte(
    files: tuple[Path, Path], capsys: Capture, argv: tuple[str, ...], problem: str
) -> None:
    stats = [path.stat() for path in files]
    assert hostctl(files, *argv) == 1
    assert problem in capsys.readouterr().err
    assert files[0].read_bytes() == SHIPPED.read_bytes()
    assert files[1].read_bytes() == SHIPPED_HUB.read_bytes()
    assert [path.stat().st_mtime_ns for path in files] == [st.st_mtime_ns for st in stats]
    assert sorted(p.name for p in files[0].parent.iterdir() if p.suffix == ".tmp") == []


def test_every_problem_of_an_edit_is_printed(files: tuple[Path, Path], capsys: Capture) -> None:
    assert hostctl(files, "set", "session.mem_limit", "4X", "daemon.start_timeout", "-1") == 1
    err = capsys.readouterr().err
    assert "refused, nothing written" in err
    assert "session.mem_limit" in err and "daemon.start_timeout" in err


def test_an_edit_that_breaks_what_check_config_checks_on_the_machine_is_refused(
    tmp_path: Path, capsys: Capture
) -> None:
    config = tmp_path / "hostd.toml"
    config.write_text("[session]\ncmd = ['/bin/sh', '{SOCKET}', '{BASE_URL}']\n")
    files = (config, tmp_path / "hub.toml")
    before = config.read_bytes()
    cmd = '["/no/such/jupyter", "{SOCKET}", "{BASE_URL}"]'
    assert hostctl(files, "set", "session.cmd", cmd) == 1
    err = capsys.readouterr().err
    assert "program session.cmd: /no/such/jupyter does not exist" in err
    assert config.read_bytes() == before


def test_a_problem_the_machine_had_already_does_not_block_other_edits(
    tmp_path: Path, capsys: Capture
) -> None:
    config = tmp_path / "hostd.toml"
    config.write_text("[session]\ncmd = ['/no/such/jupyter', '{SOCKET}', '{BASE_URL}']\n")
    assert hostctl((config, tmp_path / "hub.toml"), "set", "session.mem_limit", "4G") == 0
    assert tomllib.loads(config.read_text())["session"]["mem_limit"] == "4G"


def test_a_missing_file_is_made_from_nothing(tmp_path: Path, capsys: Capture) -> None:
    files = (tmp_path / "etc" / "hostd.toml", tmp_path / "etc" / "hub.toml")
    assert hostctl(files, "get", "hub.port") == 1
    assert "not set" in capsys.readouterr().err
    assert hostctl(files, "set", "hub.port", "9000") == 0
    assert not files[0].exists()
    assert files[1].read_text() == (
        "# the hub's configuration (hostd-hub), begun by `hostctl config`\n\n[hub]\nport = 9000\n"
    )
    assert files[1].stat().st_mode & 0o777 == 0o644


def test_the_files_mode_is_kept(files: tuple[Path, Path]) -> None:
    files[0].chmod(0o640)
    assert hostctl(files, "set", "session.mem_limit", "4G") == 0
    assert files[0].stat().st_mode & 0o777 == 0o640


def test_a_symbolic_link_is_followed_and_kept(files: tuple[Path, Path], tmp_path: Path) -> None:
    link = tmp_path / "link.toml"
    link.symlink_to(files[0])
    assert hostctl((link, files[1]), "set", "session.mem_limit", "4G") == 0
    assert link.is_symlink()
    assert "mem_limit" in tomllib.loads(files[0].read_text())["session"]


def test_nothing_changed_writes_nothing(files: tuple[Path, Path], capsys: Capture) -> None:
    mtime = files[0].stat().st_mtime_ns
    assert hostctl(files, "set", "daemon.start_timeout", "60") == 0
    assert "nothing changed" in capsys.readouterr().out
    assert files[0].stat().st_mtime_ns == mtime


def test_unset_and_items(files: tuple[Path, Path], capsys: Capture) -> None:
    assert hostctl(files, "add-item", "users.admin", "alice") == 0
    assert hostctl(files, "add-item", "auth.admin_groups", "domain admins") == 0
    auth = tomllib.loads(files[0].read_text())["auth"]
    assert (auth["admin_users"], auth["admin_groups"]) == (["alice"], ["domain admins"])
    assert hostctl(files, "remove-item", "users.admin", "alice") == 0
    assert hostctl(files, "unset", "capacity.idle_timeout") == 0
    assert "idle_timeout" not in tomllib.loads(files[0].read_text())["capacity"]


def test_get_prints_a_table_as_toml(files: tuple[Path, Path], capsys: Capture) -> None:
    assert hostctl(files, "get", "capacity") == 0
    out = capsys.readouterr().out
    assert out.startswith("[capacity]\nmax_concurrent_starts = 4\n")


def test_show_masks_a_database_password(files: tuple[Path, Path], capsys: Capture) -> None:
    assert hostctl(files, "set", "hub.db_url", '"postgresql://hub:s3cret@db/hub"') == 0
    capsys.readouterr()
    assert hostctl(files, "show") == 0
    out = capsys.readouterr().out
    assert f"# ==> {files[0]} <==" in out and f"# ==> {files[1]} <==" in out
    assert "s3cret" not in out and "postgresql://hub:***@db/hub" in out
    assert hostctl(files, "get", "hub.db_url") == 0
    assert "s3cret" not in capsys.readouterr().out


def test_a_file_that_is_not_toml_is_left_for_the_admin(
    files: tuple[Path, Path], capsys: Capture
) -> None:
    files[0].write_text("[session\n")
    assert hostctl(files, "set", "session.mem_limit", "4G") == 1
    assert "is not valid TOML" in capsys.readouterr().err
    assert files[0].read_text() == "[session\n"


# -- atomic write and the lock ----------------------------------------------------------------


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary(
    files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    def no_space(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(config_files.os, "fsync", no_space)
    assert hostctl(files, "set", "session.mem_limit", "4G") == 1
    assert "No space left on device" in capsys.readouterr().err
    assert files[0].read_bytes() == SHIPPED.read_bytes()
    assert [p.name for p in files[0].parent.iterdir() if p.name.endswith(".tmp")] == []


HOLD_LOCK = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from hostd.cli.config_files import locked
    with locked(Path(sys.argv[1])):
        print("locked", flush=True)
        sys.stdin.readline()
    """
)


def _hostctl_argv(files: tuple[Path, Path], *argv: str) -> list[str]:
    action, rest = argv[0], argv[1:]
    common = ["--config", str(files[0]), "--hub-config", str(files[1])]
    return [sys.executable, "-m", "hostd.cli.hostctl", "config", action, *common, *rest]


def test_a_second_writer_waits_for_the_lock(files: tuple[Path, Path]) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(files[0])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline() == "locked\n"
        writer = subprocess.Popen(
            _hostctl_argv(files, "set", "session.mem_limit", "4G"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(2.0)  # long enough to have written, were it not waiting
        assert writer.poll() is None
        assert files[0].read_bytes() == SHIPPED.read_bytes()
        holder.stdin.write("\n")
        holder.stdin.flush()
        _, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    assert tomllib.loads(files[0].read_text())["session"]["mem_limit"] == "4G"


def test_the_lock_gives_up_with_a_message(files: tuple[Path, Path]) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(files[0])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(ConfigKeyError, match="another hostctl config"):  # noqa: SIM117
            with config_files.locked(files[0], timeout_s=0.3):
                pass
        holder.stdin.write("\n")
        holder.stdin.flush()


def test_concurrent_writers_lose_no_change(files: tuple[Path, Path]) -> None:
    names = [f"user{number}" for number in range(6)]
    writers = [
        subprocess.Popen(
            _hostctl_argv(files, "add-item", "auth.admin_users", name),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
    assert sorted(tomllib.loads(files[0].read_text())["auth"]["admin_users"]) == names


# -- reload's refusal and address (no systemd: the restart itself is tested in the testbed) ---


def test_reload_refuses_a_broken_config_and_restarts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    config = tmp_path / "hostd.toml"
    config.write_text("[session]\nmem_limit = '4X'\n")
    ran: list[list[str]] = []

    def refuse(argv: list[str], timeout: float = 0) -> subprocess.CompletedProcess[str]:
        ran.append(argv)
        raise AssertionError(f"ran {argv}")

    monkeypatch.setattr(reload, "_run", refuse)
    target = reload.Target("daemon", config)
    status = reload.reload([target], explicit=True, out=sys.stdout, err=sys.stderr, timeout_s=1)
    assert (status, ran) == (1, [])
    err = capsys.readouterr().err
    assert "session.mem_limit" in err and "nothing restarted" in err


@pytest.mark.parametrize(
    ("ip", "tls", "url"),
    [
        ("", False, "http://127.0.0.1:8000/hub/api"),
        ("0.0.0.0", True, "https://127.0.0.1:8000/hub/api"),
        ("10.0.0.5", False, "http://10.0.0.5:8000/hub/api"),
        ("::", False, "http://[::1]:8000/hub/api"),
    ],
)
def test_the_hub_is_asked_where_it_listens(ip: str, tls: bool, url: str) -> None:
    assert reload.health_url(ip, 8000, tls=tls) == url


def test_keys_are_plain_values() -> None:
    assert str(Key("daemon", ("session", "environment", "MY VAR"))) == (
        'session.environment."MY VAR"'
    )
    assert os.sep == "/"
