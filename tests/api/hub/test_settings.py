"""The hub's config: defaults, the file, command-line overrides, every problem at once; the
cookie secret's file."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostd.api.hub.security import Secret, load_or_create_secret
from hostd.api.hub.settings import DEFAULT_PORT, HubConfig, load_hub_config, parse_hub_config
from hostd.units.errors import ConfigError


def problems(data: dict[str, object], **overrides: object) -> dict[str, str]:
    with pytest.raises(ConfigError) as raised:
        parse_hub_config(data, overrides=overrides)
    return dict(raised.value.problems)


def test_the_defaults_are_jupyterhubs_port_and_the_hubs_own_state_dir() -> None:
    config = parse_hub_config({})
    assert (config.ip, config.port) == ("", DEFAULT_PORT) == ("", 8000)
    assert config.database_url == "sqlite:////var/lib/hostd-hub/hub.sqlite"
    assert config.cookie_secret_path == Path("/var/lib/hostd-hub/cookie_secret")
    assert not config.tls and not config.admin_access
    assert config.cookie_max_age_s == 14 * 86400


def test_the_shipped_file_holds_every_default() -> None:
    shipped = Path(__file__).parents[3] / "packaging" / "hub.toml"
    assert load_hub_config(shipped) == HubConfig()


def test_command_line_options_override_the_file(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text('[hub]\nip = "127.0.0.1"\nport = 9000\nadmin_access = true\n')
    config = load_hub_config(path, overrides={"port": 8443, "ip": None})
    assert (config.ip, config.port, config.admin_access) == ("127.0.0.1", 8443, True)


def test_tls_needs_both_files() -> None:
    config = parse_hub_config({"hub": {"ssl_cert": "/etc/c.pem", "ssl_key": "/etc/k.pem"}})
    assert config.tls
    assert "hub.ssl_cert" in problems({}, ssl_cert=Path("/etc/c.pem"))


def test_every_problem_is_listed_by_its_key() -> None:
    found = problems(
        {
            "hub": {
                "port": 70000,
                "ip": "not-an-ip",
                "admin_acess": True,
                "slow_spawn_timeout": -1,
                "cookie_max_age_days": 0,
                "command": "rm -rf /",
                "trusted_proxies": "127.0.0.1",
                "log_level": "loud",
                "state_dir": "relative/dir",
                "db_url": "hub.sqlite",
            },
            "daemon": {},
        }
    )
    assert set(found) == {
        "hub.port",
        "hub.ip",
        "hub.admin_acess",
        "hub.slow_spawn_timeout",
        "hub.cookie_max_age_days",
        "hub.command",
        "hub.trusted_proxies",
        "hub.log_level",
        "hub.state_dir",
        "hub.db_url",
        "daemon",
    }
    assert "did you mean admin_access" in found["hub.admin_acess"]


@pytest.mark.parametrize("port", [True, "8000", 0])
def test_a_port_is_a_number(port: object) -> None:
    assert "hub.port" in problems({"hub": {"port": port}})


def test_a_file_that_cannot_be_read_or_parsed_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_hub_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[hub\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_hub_config(bad)


def test_the_cookie_secret_is_made_once_0600_and_never_shown(tmp_path: Path) -> None:
    path = tmp_path / "cookie_secret"
    first = load_or_create_secret(path)
    assert path.stat().st_mode & 0o777 == 0o600
    again = load_or_create_secret(path)
    assert first.sign("p", "v") == again.sign("p", "v")
    assert "*" in repr(first) and path.read_text().strip() not in repr(first) + str(first)


def test_a_cookie_secret_others_may_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cookie_secret"
    load_or_create_secret(path)
    path.chmod(0o640)
    with pytest.raises(PermissionError, match="chmod 600"):
        load_or_create_secret(path)


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Secret(b"short")
