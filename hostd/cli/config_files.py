"""`hostctl config`'s file work: lock, read, check, write (hostd/ layer: the I/O half; the
keys are hostd.cli.config_keys, the edits hostd.cli.config_edit).

One edit is: lock the files (flock on ``.<name>.lock`` next to each, so two `hostctl config`
never interleave), read them, change the documents, check the result with the rules
`hostctl check-config` and the hub apply, and only then write, each file atomically (a
temporary file in the same directory, fsync, rename) with the old file's mode and owner. A
refused edit writes nothing: the files stay byte for byte as they were.

A file that does not exist yet is made from nothing, with a header comment, mode 0644 and
root's (as install.sh installs it): the shipped template (packaging/*.toml) is not part of the
installed package, and a machine without the file runs on every default, which an empty
file says as well.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.toml_document import TOMLDocument

from hostd.cli.config_keys import ConfigFile, ConfigKeyError
from hostd.config import DEFAULT_LOGIN_DEFS, Config, parse_config
from hostd.config.document import read_optional_text
from hostd.units.errors import ConfigError

__all__ = [
    "LOCK_TIMEOUT_S",
    "NEW_FILE_MODE",
    "Documents",
    "Edited",
    "edit",
    "locked",
    "problems_of",
    "read_document",
    "write_atomically",
]

LOCK_TIMEOUT_S: Final = 30.0
NEW_FILE_MODE: Final = 0o644  # install.sh's; neither file holds a secret
_HEADERS: Final[Mapping[ConfigFile, str]] = {
    "daemon": "hostd's configuration, begun by `hostctl config`; every option: README, "
    "Configuration reference",
    "hub": "the hub's configuration (hostd-hub), begun by `hostctl config`",
}

Documents = Mapping[ConfigFile, TOMLDocument]


@dataclass(frozen=True)
class Edited:
    """What an edit did: the files it wrote (none when nothing changed, or when only asked
    what it would do), and each changed file's text before (None: no file) and after."""

    written: tuple[Path, ...]
    changes: tuple[tuple[Path, str | None, str], ...] = ()


def _lock_path(path: Path) -> Path:
    return path.parent / f".{path.name}.lock"


@contextlib.contextmanager
def locked(path: Path, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the file's lock (flock on .<name>.lock beside it); ConfigKeyError after timeout_s."""
    lock = _lock_path(path)
    try:
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)  # a first file in /etc/hostd
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ConfigKeyError(f"cannot open the lock {lock}: {exc.strerror or exc}") from None
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ConfigKeyError(
                        f"another hostctl config has been changing {path} for {timeout_s:g} s "
                        f"(it holds {lock}): try again"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def read_document(path: Path, file: ConfigFile) -> tuple[str | None, TOMLDocument]:
    """The file's text (None if it does not exist) and its document (a header comment only,
    for a missing file). ConfigKeyError if it cannot be read or is not TOML."""
    try:
        text: str | None = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        text = None
    except OSError as exc:
        raise ConfigKeyError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigKeyError(f"{path} is not UTF-8: fix it by hand first") from None
    if text is None:
        document = tomlkit.document()
        document.add(tomlkit.comment(_HEADERS[file]))
        return None, document
    try:
        return text, tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ConfigKeyError(
            f"{path} is not valid TOML ({exc}): fix it by hand first (hostctl check-config)"
        ) from None


def write_atomically(path: Path, text: str, like: os.stat_result | None) -> None:
    """Replace path by text: a temporary file beside it, fsync, rename, fsync of the
    directory; with like's mode and owner (NEW_FILE_MODE and ours for a new file)."""
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), NEW_FILE_MODE if like is None else like.st_mode & 0o7777)
            if like is not None:
                mine = os.fstat(handle.fileno())
                if (mine.st_uid, mine.st_gid) != (like.st_uid, like.st_gid):
                    os.fchown(handle.fileno(), like.st_uid, like.st_gid)
            os.fsync(handle.fileno())
        Path(temporary).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(temporary).unlink()
        raise
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)  # the rename itself survives a crash
    finally:
        os.close(directory)


def _parse_daemon(text: str, path: Path) -> tuple[Config | None, list[str]]:
    try:
        defs = read_optional_text(DEFAULT_LOGIN_DEFS)
        return parse_config(text, source=path, login_defs=defs), []
    except ConfigError as exc:
        return None, [f"{key}: {message}" for key, message in exc.problems]


def _failures(config: Config | None) -> set[tuple[str, str]]:
    from hostd.cli.verify_host import config_checks  # its I/O only when hostd.toml changes

    if config is None:
        return set()
    return {(c.name, c.detail) for c in config_checks(config) if c.status == "fail"}


def problems_of(file: ConfigFile, path: Path, old: str | None, new: str) -> list[str]:
    """Why new text may not replace old, one line each; [] if it may.

    hostd.toml: the rules of hostd.config (every problem), then check-config's checks of what
    it names on this machine (programs, paths, groups) — only failures the edit brings in, so
    a machine with a problem already can still have its other settings changed. hub.toml:
    the hub's own rules (hostd.api.hub.settings).
    """
    if file == "hub":
        # Imported here, as verify_host does: the hub's rules, never its app.
        from hostd.api.hub.settings import parse_hub_config

        try:
            parse_hub_config(tomllib.loads(new))
        except tomllib.TOMLDecodeError as exc:
            return [f"{path}: not valid TOML: {exc}"]
        except ConfigError as exc:
            return [f"{key}: {message}" for key, message in exc.problems]
        return []
    config, problems = _parse_daemon(new, path)
    if problems:
        return problems
    before = _failures(_parse_daemon(old, path)[0] if old is not None else parse_config(""))
    return [
        f"{name}: {detail} (check-config)" for name, detail in sorted(_failures(config) - before)
    ]


def edit(
    paths: Mapping[ConfigFile, Path],
    change: Callable[[Documents], None],
    *,
    write: bool = True,
    check: bool = True,
    refusal: str = "refused, nothing written (keys that go together: give them to one `set`)",
) -> Edited:
    """Lock the files, change their documents with change, check, and write what changed
    (with write=False: only say what would change, after the same checks; with check=False
    as well, without them, to show a change that would be refused).

    ConfigKeyError (refusal, then every problem) refuses the edit; nothing is written then."""
    # A symbolic link is followed: the file it names is edited, the link stays.
    paths = {file: Path(os.path.realpath(path)) for file, path in paths.items()}
    files = sorted(paths)  # one order for every writer: no deadlock between two
    with contextlib.ExitStack() as stack:
        for file in files:
            stack.enter_context(locked(paths[file]))
        read = {file: read_document(paths[file], file) for file in files}
        documents = {file: document for file, (_, document) in read.items()}
        baseline = {file: tomlkit.dumps(document) for file, document in documents.items()}
        change(documents)
        changed = [f for f in files if tomlkit.dumps(documents[f]) != baseline[f]]
        problems = [
            problem
            for f in (changed if check or write else [])
            for problem in problems_of(f, paths[f], read[f][0], tomlkit.dumps(documents[f]))
        ]
        if problems:
            raise ConfigKeyError(refusal, tuple(problems))
        changes = tuple((paths[f], read[f][0], tomlkit.dumps(documents[f])) for f in changed)
        if not write:
            return Edited(written=(), changes=changes)
        for path, _, text in changes:
            like = path.stat() if path.exists() else None
            write_atomically(path, text, like)
        return Edited(written=tuple(path for path, _, _ in changes), changes=changes)
