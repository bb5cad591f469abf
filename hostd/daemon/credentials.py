"""A session's token and secrets, as files only its user (and root) can read (host layer).

Not Environment= or argv: both are readable by every local user (D-Bus, ps;
GHSA-cg54-gpgr-4rm6). Not LoadCredential= either: inside the private systemd of the test bed,
credentials directories stay empty (seen with systemd 252, even for SetCredential=), and a
mechanism that cannot be proven here is not one we ship. Layout, per session:

    <runtime_dir>/credentials/<unit>/          root's, 0755
        jupyter-token                          the user's, 0400 (JUPYTER_TOKEN_FILE)
        JUPYTERHUB_API_TOKEN ...               the user's, 0400 (HOSTD_CREDENTIALS_DIR),
                                               exported by hostd-session-exec
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path

from hostd.units.errors import InvalidOption

__all__ = [
    "check_secrets",
    "read_token",
    "remove",
    "write_secrets",
    "write_token",
]

TOKEN_FILE_NAME = "jupyter-token"  # the file, not a secret  # noqa: S105
SECRETS_MAX = 32
SECRET_VALUE_MAX = 8192


def check_secrets(values: Mapping[str, str]) -> None:
    """Names a shell can export, bounded values; InvalidOption otherwise."""
    if len(values) > SECRETS_MAX:
        raise InvalidOption(f"at most {SECRETS_MAX} secrets")
    for key, value in values.items():
        if not (
            isinstance(key, str)
            and key.isascii()
            and key.replace("_", "A").isalnum()
            and not key[0].isdigit()
            and key.upper() == key
            and len(key) <= 64
        ):
            raise InvalidOption(f"secret name {key!r}: use A-Z, 0-9 and _ (a variable name)")
        if not isinstance(value, str) or "\0" in value or len(value) > SECRET_VALUE_MAX:
            raise InvalidOption(f"secret {key}: a string of at most {SECRET_VALUE_MAX} characters")


def _write_private(path: Path, text: str, uid: int, gid: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o400)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chown(path, uid, gid)


def write_token(root: Path, unit: str, uid: int, gid: int) -> Path:
    """A fresh directory for the unit with a fresh Jupyter token in it; the token's path."""
    root.mkdir(mode=0o755, parents=True, exist_ok=True)
    root.chmod(0o755)  # mkdir's mode passes through the umask; the session must traverse
    directory = root / unit
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    directory.chmod(0o755)
    path = directory / TOKEN_FILE_NAME
    _write_private(path, secrets.token_urlsafe(32), uid, gid)
    return path


def write_secrets(directory: Path, values: Mapping[str, str], uid: int, gid: int) -> Path | None:
    """Each secret in a file of its own beside the token; the directory, None if none."""
    if not values:
        return None
    for key, value in values.items():
        _write_private(directory / key, value, uid, gid)
    return directory


def read_token(root: Path, unit: str) -> str:
    """FileNotFoundError when the session has none."""
    return (root / unit / TOKEN_FILE_NAME).read_text().strip()


def remove(root: Path, unit: str) -> None:
    shutil.rmtree(root / unit, ignore_errors=True)
