"""Which programs a session's command runs, and where a session looks for them (pure layer).

A command such as ``["/opt/hostd/bin/hostd-session-exec", "/opt/hostd/session/bin/
jupyterhub-singleuser", ...]`` runs two programs: systemd execs the wrapper, which execs the
program after it (``exec "$@"``, so a bare name is looked up on the session's PATH). A check
that sees only the first one passes while every start fails with exit status 127 (issue 14,
F3). Nothing here touches the file system: hostd.cli.verify_host stats what this names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

__all__ = [
    "SESSION_WRAPPERS",
    "SYSTEMD_DEFAULT_PATH",
    "programs_of",
    "session_path",
    "shebang_programs",
]

# Programs that run the rest of their argv as a command (packaging/hostd-session-exec).
SESSION_WRAPPERS: Final = frozenset({"hostd-session-exec"})
# A unit's PATH when its Environment= sets none: systemd's default for services (systemd 252
# as Debian 12 builds it; `systemd-path search-binaries-default` prints it).
SYSTEMD_DEFAULT_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# execve(2) reads at most this much of a script's "#!" line (BINPRM_BUF_SIZE, Linux >= 5.1).
_SHEBANG_MAX: Final = 256


def _basename(program: str) -> str:
    return program.rsplit("/", 1)[-1]


def programs_of(argv: Sequence[str]) -> tuple[str, ...]:
    """The programs a command runs, as written: argv[0], and after each wrapper the program it
    execs (the next word). A wrapper with nothing after it runs nothing more."""
    if not argv:
        return ()
    programs = [argv[0]]
    index = 0
    while _basename(argv[index]) in SESSION_WRAPPERS and index + 1 < len(argv):
        index += 1
        programs.append(argv[index])
    return tuple(programs)


def session_path(environment: Mapping[str, str]) -> tuple[str, ...]:
    """The directories a session's ``exec NAME`` searches: the PATH its [session] environment
    sets, else systemd's default. Empty and relative entries (the working directory, which
    differs per user) are left out."""
    path = environment.get("PATH", SYSTEMD_DEFAULT_PATH)
    return tuple(entry for entry in path.split(":") if entry.startswith("/"))


def shebang_programs(head: bytes) -> tuple[str, ...]:
    """The programs a script's first line makes the kernel run: ``#!/bin/sh`` -> ("/bin/sh",);
    ``#!/usr/bin/env python3`` -> ("/usr/bin/env", "python3"), env looking python3 up on PATH.
    () for a file that does not start with "#!" (a binary) or names no absolute interpreter."""
    if not head.startswith(b"#!"):
        return ()
    line = head[2:_SHEBANG_MAX].split(b"\n", 1)[0].decode(errors="replace")
    # The kernel splits off the interpreter at the first blank; the rest is one argument.
    words = line.split(None, 1)
    if not words or not words[0].startswith("/"):
        return ()
    interpreter, argument = words[0], (words[1].strip() if len(words) > 1 else "")
    if _basename(interpreter) == "env" and argument and not argument.startswith("-"):
        return (interpreter, argument.split()[0])
    return (interpreter,)
