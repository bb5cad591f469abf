"""The whole command a session runs, runnable by every user: hostd.cli.verify_programs' verdicts
from facts, and hostd.cli.verify_host's facts from real files and modes (issue 14, F3)."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostd.cli.serve import main as hostd_main
from hostd.cli.verify import PathFacts
from hostd.cli.verify_host import check_config, program_facts
from hostd.cli.verify_programs import ProgramFacts, judge_command

EXEC = "/opt/hostd/bin/hostd-session-exec"
SINGLEUSER = "/opt/hostd/session/bin/jupyterhub-singleuser"
SEARCH = ("/usr/local/bin", "/usr/bin")


def facts(path: str, mode: int, owner: str = "root", group: str = "root") -> PathFacts:
    kind = stat.S_IFDIR if mode & stat.S_IFDIR else stat.S_IFREG
    return PathFacts(path, kind | stat.S_IMODE(mode), owner, group)


def tree(path: str) -> tuple[PathFacts, ...]:
    """Root-owned 0755 directories above path."""
    parts = path.split("/")[1:-1]
    return (
        facts("/", stat.S_IFDIR | 0o755),
        *(facts("/" + "/".join(parts[: i + 1]), stat.S_IFDIR | 0o755) for i in range(len(parts))),
    )


def good(path: str, **options: object) -> ProgramFacts:
    return ProgramFacts(path, path, facts(path, 0o755), tree(path), **options)  # type: ignore[arg-type]


# -- the verdicts ---------------------------------------------------------------------------


def test_wrapper_and_program_present() -> None:
    check = judge_command("commands.singleuser", [good(EXEC), good(SINGLEUSER)], search_path=SEARCH)
    assert (check.name, check.status, check.detail) == (
        "program commands.singleuser",
        "ok",
        f"{EXEC}, then {SINGLEUSER}",
    )


def test_the_program_after_the_wrapper_missing_fails_with_the_pip_fix() -> None:
    """Issue 14, F3: the wrapper is there, jupyterhub-singleuser is not."""
    missing = ProgramFacts(SINGLEUSER, SINGLEUSER, None, pip="/opt/hostd/session/bin/pip")
    check = judge_command("commands.singleuser", [good(EXEC), missing], search_path=SEARCH)
    assert check.status == "fail"
    assert check.detail == f"{SINGLEUSER} does not exist: every start with it fails"
    assert check.fix == "/opt/hostd/session/bin/pip install jupyterhub"


def test_missing_programs_each_say_their_fix() -> None:
    wrapper = ProgramFacts(EXEC, EXEC, None)
    lab = ProgramFacts("/srv/env/bin/jupyter", "/srv/env/bin/jupyter", None)
    other = ProgramFacts("/srv/tool", "/srv/tool", None)
    check = judge_command("commands.x", [wrapper, lab, other], search_path=SEARCH)
    assert check.detail == (
        f"{EXEC} does not exist: every start with it fails; "
        "/srv/env/bin/jupyter does not exist: every start with it fails; "
        "/srv/tool does not exist: every start with it fails"
    )
    assert check.fix == (
        "run packaging/install.sh again; "
        "pip install jupyterlab into the environment of /srv/env/bin/jupyter, or change "
        "commands.x; install it, or change commands.x"
    )


def test_a_bare_name_on_no_path_directory() -> None:
    check = judge_command(
        "session.cmd", [good(EXEC), ProgramFacts("jupyter", None, None)], search_path=SEARCH
    )
    assert check.detail == (
        "jupyter is on no directory of the session's PATH (/usr/local/bin:/usr/bin): "
        "every start with it fails"
    )


def test_a_scripts_missing_interpreter() -> None:
    script = good(SINGLEUSER)
    python = ProgramFacts(
        "/opt/hostd/session/bin/python3",
        "/opt/hostd/session/bin/python3",
        None,
        interpreter_of=SINGLEUSER,
    )
    check = judge_command("commands.singleuser", [script, python], search_path=SEARCH)
    assert check.detail == (
        "/opt/hostd/session/bin/python3 does not exist (the interpreter "
        f"{SINGLEUSER} names in its #! line): every start with it fails"
    )
    assert check.fix == f"reinstall what provides {SINGLEUSER}, or change commands.singleuser"
    # Present, the interpreter is checked but not listed among what the command runs.
    ok = judge_command(
        "commands.singleuser",
        [script, good("/usr/bin/python3.11", interpreter_of=SINGLEUSER)],
        search_path=SEARCH,
    )
    assert (ok.status, ok.detail) == ("ok", SINGLEUSER)


@pytest.mark.parametrize(
    ("mode", "owner", "group", "status", "detail"),
    [
        (0o644, "root", "root", "fail", "/x/a is not an executable file"),
        (0o750, "root", "staff", "warn", "/x/a is root:staff 0750: only some users may run it"),
        (0o700, "root", "root", "fail", "/x/a is root:root 0700: only root may run it"),
        (
            0o775,
            "root",
            "staff",
            "fail",
            "/x/a is root:staff 0775: group staff can change what every user's session runs",
        ),
        (0o775, "root", "root", "ok", "/x/a"),
        (
            0o757,
            "root",
            "root",
            "fail",
            "/x/a is root:root 0757: every user can change what every user's session runs",
        ),
        (
            0o755,
            "alice",
            "alice",
            "fail",
            "/x/a is alice:alice 0755: alice can change what every user's session runs",
        ),
    ],
)
def test_the_programs_own_mode(mode: int, owner: str, group: str, status: str, detail: str) -> None:
    program = ProgramFacts("/x/a", "/x/a", facts("/x/a", mode, owner, group), tree("/x/a"))
    check = judge_command("commands.a", [program], search_path=SEARCH)
    assert (check.status, check.detail) == (status, detail)


def test_a_directory_that_is_no_file() -> None:
    program = ProgramFacts("/x/a", "/x/a", facts("/x/a", stat.S_IFDIR | 0o755), tree("/x/a"))
    check = judge_command("commands.a", [program], search_path=SEARCH)
    assert (check.status, check.fix) == ("fail", "chmod 0755 /x/a")


@pytest.mark.parametrize(
    ("mode", "owner", "group", "status", "detail", "fix"),
    [
        (
            0o700,
            "root",
            "root",
            "fail",
            "/x is root:root 0700: other users cannot reach /x/a",
            "chmod o+x /x",
        ),
        (
            0o750,
            "root",
            "staff",
            "warn",
            "/x is root:staff 0750: only some users can reach /x/a",
            None,
        ),
        (0o1777, "root", "root", "ok", "/x/a", None),  # sticky, as /tmp: nobody replaces root's
        (
            0o777,
            "root",
            "root",
            "fail",
            "/x is root:root 0777: every user can change what every user's session runs",
            "chown root:root /x && chmod go-w /x",
        ),
        (
            0o755,
            "bob",
            "bob",
            "fail",
            "/x is bob:bob 0755: bob can change what every user's session runs",
            "chown root:root /x && chmod go-w /x",
        ),
    ],
)
def test_the_directories_above_it(
    mode: int, owner: str, group: str, status: str, detail: str, fix: str | None
) -> None:
    directories = (facts("/", stat.S_IFDIR | 0o755), facts("/x", stat.S_IFDIR | mode, owner, group))
    program = ProgramFacts("/x/a", "/x/a", facts("/x/a", 0o755), directories)
    check = judge_command("commands.a", [program], search_path=SEARCH)
    assert (check.status, check.detail, check.fix) == (status, detail, fix)


def test_the_first_warning_when_nothing_fails() -> None:
    shared = ProgramFacts("/x/a", "/x/a", facts("/x/a", 0o750, "root", "staff"), tree("/x/a"))
    check = judge_command("commands.a", [good(EXEC), shared], search_path=SEARCH)
    assert (check.status, check.detail) == (
        "warn",
        "/x/a is root:staff 0750: only some users may run it",
    )


# -- the facts, from real files -------------------------------------------------------------


@pytest.fixture
def world() -> Iterator[Path]:
    """A root-owned 0755 directory every user can traverse (pytest's tmp_path is 0700)."""
    top = Path(tempfile.mkdtemp(prefix="hostd-programs-", dir="/var/tmp"))
    try:
        top.chmod(0o755)
        yield top
    finally:
        shutil.rmtree(top)


def write(path: Path, text: str, mode: int = 0o755) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.mark.host_root
def test_facts_of_a_venv_script_with_its_interpreter(world: Path) -> None:
    python = world / "env" / "bin" / "python3"
    python.parent.mkdir(parents=True)
    python.parent.chmod(0o755)
    (world / "env").chmod(0o755)
    python.symlink_to(os.path.realpath("/bin/sh"))
    write(world / "env" / "bin" / "pip", f"#!{python}\n")
    script = write(world / "env" / "bin" / "jupyterhub-singleuser", f"#!{python}\nexit 0\n")
    found = program_facts(str(script), SEARCH)
    assert [(f.name, f.path, f.interpreter_of) for f in found] == [
        (str(script), str(script), ""),
        (str(python), str(python), str(script)),
    ]
    assert found[0].pip == str(world / "env" / "bin" / "pip")
    # The directories written and those the link resolves to, root first, each once.
    written = [d.path for d in found[1].directories]
    assert written[:4] == ["/", "/var", "/var/tmp", str(world)]
    assert str(Path("/bin/sh").resolve().parent) in written
    assert found[1].target is not None and stat.S_ISREG(found[1].target.mode)
    check = judge_command("commands.singleuser", found, search_path=SEARCH)
    assert (check.status, check.detail) == ("ok", str(script))


@pytest.mark.host_root
def test_facts_of_a_bare_name_and_a_missing_one(world: Path) -> None:
    write(world / "bin" / "tool", "#!/usr/bin/env sh\n")
    (world / "bin").chmod(0o755)
    tool = str(world / "bin" / "tool")
    # Found on the second directory; env's argument looked up on the same PATH (not there).
    found = program_facts("tool", (str(world / "nothing"), str(world / "bin")))
    assert [(f.name, f.path, f.interpreter_of) for f in found] == [
        ("tool", tool, ""),
        ("/usr/bin/env", "/usr/bin/env", tool),
        ("sh", None, tool),
    ]
    check = judge_command("commands.t", found, search_path=(str(world / "bin"),))
    assert check.detail.startswith("sh is on no directory of the session's PATH")
    # On a PATH that has it, the whole chain is fine.
    found = program_facts("tool", (str(world / "bin"), "/usr/bin", "/bin"))
    assert [f.path for f in found][2] in ("/usr/bin/sh", "/bin/sh")
    assert program_facts("no-such-tool", SEARCH) == [ProgramFacts("no-such-tool", None, None)]
    missing = program_facts(str(world / "gone"), SEARCH)
    assert missing == [ProgramFacts(str(world / "gone"), str(world / "gone"), None)]


@pytest.mark.host_root
def test_check_config_fails_on_the_missing_program_after_the_wrapper(world: Path) -> None:
    """Issue 14, F3 with real files: the wrapper there, jupyterhub-singleuser not; then it is."""
    exec_ = write(world / "bin" / "hostd-session-exec", '#!/bin/sh\nexec "$@"\n')
    (world / "bin").chmod(0o755)
    write(world / "session" / "bin" / "pip", "#!/bin/sh\n")
    for directory in (world / "session", world / "session" / "bin"):
        directory.chmod(0o755)
    singleuser = world / "session" / "bin" / "jupyterhub-singleuser"
    config = write(
        world / "hostd.toml",
        f'[session]\ncmd = ["/bin/sh", "{{SOCKET}}"]\n'
        f'[commands]\nsingleuser = ["{exec_}", "{singleuser}", "--sock={{SOCKET}}"]\n',
        0o644,
    )
    checks = {c.name: c for c in check_config(config)}
    check = checks["program commands.singleuser"]
    assert (check.status, check.detail, check.fix) == (
        "fail",
        f"{singleuser} does not exist: every start with it fails",
        f"{world}/session/bin/pip install jupyterhub",
    )
    assert checks["program session.cmd"].status == "ok"
    # hostd check-config (install.sh runs it) says the same and exits 1.
    assert hostd_main(["check-config", str(config)]) == 1

    write(singleuser, "#!/bin/sh\n")
    check = {c.name: c for c in check_config(config)}["program commands.singleuser"]
    assert (check.status, check.detail) == ("ok", f"{exec_}, then {singleuser}")
    assert hostd_main(["check-config", str(config)]) == 0

    # Runnable by root only: the session's user is not root.
    singleuser.chmod(0o700)
    check = {c.name: c for c in check_config(config)}["program commands.singleuser"]
    assert check.detail == f"{singleuser} is root:root 0700: only root may run it"
    # Behind a directory other users cannot enter.
    singleuser.chmod(0o755)
    (world / "session").chmod(0o700)
    check = {c.name: c for c in check_config(config)}["program commands.singleuser"]
    assert check.detail == (
        f"{world}/session is root:root 0700: other users cannot reach {singleuser}"
    )
