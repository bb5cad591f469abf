"""Can an ordinary user run the whole command a session runs? (hostd/ layer, pure).

One verdict per configured command ([session] cmd, each [commands] entry), over what
hostd.cli.verify_host found of every program in it: the wrapper, the program the wrapper execs
(hostd.units.programs.programs_of), and the interpreter a script's "#!" line names. Each must
exist, be an executable file every user may run, sit behind directories every user may
traverse, and be changeable by root alone (anyone else who can write it, or a directory above
it, decides what every user's session runs).

    FAIL  program commands.singleuser  /opt/hostd/session/bin/jupyterhub-singleuser does not
          exist: every start with it fails
          fix: /opt/hostd/session/bin/pip install jupyterhub

Nothing here touches the file system.
"""

from __future__ import annotations

import stat
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from hostd.cli.verify import Check, PathFacts, Status
from hostd.units.programs import SESSION_WRAPPERS

__all__ = ["PIP_PACKAGES", "ProgramFacts", "judge_command"]

# The pip package that provides a program a session commonly runs, for the fix of a missing one.
PIP_PACKAGES: Final = {
    "jupyter": "jupyterlab",
    "jupyter-lab": "jupyterlab",
    "jupyter-server": "jupyter_server",
    "jupyter-notebook": "notebook",
    "jupyterhub-singleuser": "jupyterhub",
}


@dataclass(frozen=True)
class ProgramFacts:
    """One program of a command, as found on the machine.

    ``name`` is as the command (or a script's "#!" line) writes it; ``path`` the file it
    resolves to (None: a bare name found on no PATH directory); ``target`` that file's stat,
    symbolic links followed (None: missing); ``directories`` every directory a user passes
    through to reach it, written and resolved; ``interpreter_of`` the script whose "#!" line
    names it ("" for the command's own programs); ``pip`` a pip beside it, for the fix.
    """

    name: str
    path: str | None
    target: PathFacts | None
    directories: tuple[PathFacts, ...] = ()
    interpreter_of: str = ""
    pip: str | None = None


_Verdict = tuple[Status, str, str | None]  # status, detail, fix


def _basename(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _missing(program: ProgramFacts, where: str, search_path: Sequence[str]) -> _Verdict:
    base = _basename(program.name)
    if program.path is None:
        found = f"{program.name} is on no directory of the session's PATH ({':'.join(search_path)})"
    else:
        found = f"{program.path} does not exist"
    if program.interpreter_of:
        found += f" (the interpreter {program.interpreter_of} names in its #! line)"
        fix = f"reinstall what provides {program.interpreter_of}, or change {where}"
    elif base in SESSION_WRAPPERS:
        fix = "run packaging/install.sh again"
    elif program.pip is not None and base in PIP_PACKAGES:
        fix = f"{program.pip} install {PIP_PACKAGES[base]}"
    elif base in PIP_PACKAGES:
        package = PIP_PACKAGES[base]
        fix = f"pip install {package} into the environment of {program.name}, or change {where}"
    else:
        fix = f"install it, or change {where}"
    return "fail", f"{found}: every start with it fails", fix


def _writer(facts: PathFacts) -> str | None:
    """Who besides root may change this file or directory (None: root alone)."""
    if facts.owner != "root":
        return facts.owner
    if facts.permissions & stat.S_IWGRP and facts.group != "root":
        return f"group {facts.group}"
    # A sticky directory (/tmp): others may add entries, not replace root's.
    sticky = stat.S_ISDIR(facts.mode) and facts.permissions & stat.S_ISVTX
    if facts.permissions & stat.S_IWOTH and not sticky:
        return "every user"
    return None


def _judge(program: ProgramFacts, where: str, search_path: Sequence[str]) -> _Verdict | None:
    """The worst thing about one program (None: nothing)."""
    target = program.target
    if program.path is None or target is None:
        return _missing(program, where, search_path)
    path = program.path
    warning: _Verdict | None = None
    for directory in program.directories:
        if directory.permissions & stat.S_IXOTH:
            continue
        found = f"{directory.path} is {directory.describe()}"
        if directory.permissions & stat.S_IXGRP and warning is None:
            warning = ("warn", f"{found}: only some users can reach {path}", None)
        elif not directory.permissions & stat.S_IXGRP:
            return (
                "fail",
                f"{found}: other users cannot reach {path}",
                f"chmod o+x {directory.path}",
            )
    if not stat.S_ISREG(target.mode) or not target.permissions & 0o111:
        return "fail", f"{path} is not an executable file", f"chmod 0755 {path}"
    if not target.permissions & stat.S_IXOTH:
        found = f"{path} is {target.describe()}"
        if not target.permissions & stat.S_IXGRP:
            return "fail", f"{found}: only {target.owner} may run it", f"chmod 0755 {path}"
        warning = warning or ("warn", f"{found}: only some users may run it", None)
    for facts in (target, *program.directories):
        writer = _writer(facts)
        if writer is not None:
            return (
                "fail",
                f"{facts.path} is {facts.describe()}: {writer} can change what every "
                "user's session runs",
                f"chown root:root {facts.path} && chmod go-w {facts.path}",
            )
    return warning


def judge_command(
    where: str, programs: Sequence[ProgramFacts], *, search_path: Sequence[str]
) -> Check:
    """One configured command (where: session.cmd, commands.NAME): every program's failure,
    else the first warning, else ok with the programs it runs."""
    label = f"program {where}"
    verdicts = [_judge(program, where, search_path) for program in programs]
    failures = [verdict for verdict in verdicts if verdict is not None and verdict[0] == "fail"]
    if failures:
        fixes = dict.fromkeys(fix for _, _, fix in failures if fix)
        return Check(
            label,
            "fail",
            "; ".join(detail for _, detail, _ in failures),
            "; ".join(fixes) or None,
        )
    for verdict in verdicts:
        if verdict is not None:
            status, detail, fix = verdict
            return Check(label, status, detail, fix)
    ran = [program.path or program.name for program in programs if not program.interpreter_of]
    return Check(label, "ok", ", then ".join(ran))
