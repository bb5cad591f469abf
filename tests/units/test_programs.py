"""hostd.units.programs: which programs a session's command runs, and where exec looks."""

from __future__ import annotations

import pytest

from hostd.units.programs import (
    SYSTEMD_DEFAULT_PATH,
    programs_of,
    session_path,
    shebang_programs,
)

EXEC = "/opt/hostd/bin/hostd-session-exec"
SINGLEUSER = "/opt/hostd/session/bin/jupyterhub-singleuser"


def test_a_plain_command_runs_its_first_word() -> None:
    assert programs_of(["/opt/hostd/session/bin/jupyter", "lab", "{SOCKET}"]) == (
        "/opt/hostd/session/bin/jupyter",
    )


def test_the_wrapper_runs_the_program_after_it() -> None:
    assert programs_of([EXEC, SINGLEUSER, "--ServerApp.sock={SOCKET}"]) == (EXEC, SINGLEUSER)
    # A bare name after the wrapper: the wrapper's exec finds it on PATH.
    assert programs_of([EXEC, "jupyter", "lab"]) == (EXEC, "jupyter")
    # Wrapped twice: each wrapper runs the next word.
    assert programs_of([EXEC, EXEC, SINGLEUSER]) == (EXEC, EXEC, SINGLEUSER)


def test_a_wrapper_alone_and_an_empty_command() -> None:
    assert programs_of([EXEC]) == (EXEC,)
    assert programs_of([]) == ()


def test_session_path_is_the_policys_or_systemds_default() -> None:
    assert session_path({}) == tuple(SYSTEMD_DEFAULT_PATH.split(":"))
    assert "/usr/bin" in session_path({})
    # Empty and relative entries mean the working directory, which differs per user.
    assert session_path({"PATH": "/opt/env/bin::bin:/usr/bin"}) == ("/opt/env/bin", "/usr/bin")


@pytest.mark.parametrize(
    ("head", "programs"),
    [
        (b"#!/bin/sh\nset -eu\n", ("/bin/sh",)),
        (
            b"#!/opt/hostd/session/bin/python3\n# -*- coding: utf-8 -*-\n",
            ("/opt/hostd/session/bin/python3",),
        ),
        (b"#! /bin/bash -e\n", ("/bin/bash",)),
        (b"#!/usr/bin/env python3\n", ("/usr/bin/env", "python3")),
        (b"#!/usr/bin/env\tpython3 -u\n", ("/usr/bin/env", "python3")),
        (b"#!/usr/bin/env -S python3 -u\n", ("/usr/bin/env",)),
        (b"#!/usr/bin/env\n", ("/usr/bin/env",)),
        (b"#!python3\n", ()),
        (b"#!\n", ()),
        (b"\x7fELF\x02\x01\x01", ()),
        (b"", ()),
    ],
)
def test_shebang_programs(head: bytes, programs: tuple[str, ...]) -> None:
    assert shebang_programs(head) == programs
