"""units.environ: environment variable names, values and the caller's allowlist."""

from __future__ import annotations

import pytest

from hostd.units.environ import (
    ENV_VALUE_MAX,
    env_allowed,
    looks_secret,
    validate_env_name,
    validate_env_pattern,
    validate_env_value,
    validate_environment,
)
from hostd.units.errors import InvalidOption


@pytest.mark.parametrize(
    "name",
    ["JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN", "db_password", "AWS_SECRET", "SSH_KEY", "PASSWD"],
)
def test_secret_names(name: str) -> None:
    assert looks_secret(name)
    with pytest.raises(InvalidOption, match="credentials"):
        validate_env_name(name)


@pytest.mark.parametrize("name", ["JUPYTERHUB_USER", "_X", "a1", "PATH"])
def test_valid_names(name: str) -> None:
    assert validate_env_name(name) == name


@pytest.mark.parametrize("name", ["", "1X", "A-B", "A=B", "A B", "É", None, 5])
def test_invalid_names(name: object) -> None:
    with pytest.raises(InvalidOption) as caught:
        validate_env_name(name)
    assert repr(name) in caught.value.message


@pytest.mark.parametrize("value", ["a\nb", "a\x00b", "a\rb", 5, None, "x" * (ENV_VALUE_MAX + 1)])
def test_invalid_values(value: object) -> None:
    with pytest.raises(InvalidOption, match=r"^environment variable X: "):
        validate_env_value("X", value)


def test_valid_values() -> None:
    assert validate_env_value("X", "") == ""
    assert validate_env_value("X", "a b=c\tä") == "a b=c\tä"
    assert validate_env_value("X", "x" * ENV_VALUE_MAX) == "x" * ENV_VALUE_MAX


def test_validate_environment() -> None:
    assert validate_environment({"A": "1", "B": "2"}, what="env") == {"A": "1", "B": "2"}
    with pytest.raises(InvalidOption, match=r"^env must be a mapping"):
        validate_environment(["A=1"], what="env")
    with pytest.raises(InvalidOption, match="looks like a secret"):
        validate_environment({"API_TOKEN": "x"}, what="env")


@pytest.mark.parametrize("pattern", ["JUPYTERHUB_*", "LANG", "LC_*", "X*"])
def test_valid_patterns(pattern: str) -> None:
    assert validate_env_pattern(pattern) == pattern


@pytest.mark.parametrize("pattern", ["*", "", "A**", "*_TOKEN", "A*B", "MY_TOKEN*", "SECRET", 3])
def test_invalid_patterns(pattern: object) -> None:
    with pytest.raises(InvalidOption) as caught:
        validate_env_pattern(pattern)
    assert str(pattern) in caught.value.message


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("JUPYTERHUB_USER", True),
        ("JUPYTERHUB_", True),
        ("JUPYTERHU", False),
        ("LANG", True),
        ("LANGUAGE", False),
        ("PATH", False),
    ],
)
def test_env_allowed(name: str, allowed: bool) -> None:
    assert env_allowed(name, ("JUPYTERHUB_*", "LANG")) is allowed
    assert not env_allowed(name, ())
