"""packaging/install.sh's arguments, on the host: a wrong one is refused before anything is
touched (no root, PID 1 or testbed needed), and --help lists --jupyterhub."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

INSTALL = Path(__file__).resolve().parents[2] / "packaging" / "install.sh"


def install(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(INSTALL), *args], capture_output=True, text=True, timeout=30, check=False
    )


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["--jupyterhub=7"],
            "install.sh: --jupyterhub=7: JupyterHub 6 or 5 (--jupyterhub=6, --jupyterhub=5)",
        ),
        (
            ["--uninstall", "--jupyterhub"],
            "install.sh: --jupyterhub goes with an install; --uninstall removes it too",
        ),
        (
            ["--jupyterhub=5", "--purge"],
            "install.sh: --jupyterhub goes with an install; --purge removes it too",
        ),
    ],
)
def test_a_wrong_jupyterhub_flag_is_refused_before_anything(args: list[str], said: str) -> None:
    refused = install(*args)
    assert (refused.returncode, refused.stderr.strip()) == (1, said)
    assert refused.stdout == ""


def test_help_lists_the_jupyterhub_mode() -> None:
    shown = install("--help")
    assert shown.returncode == 0
    assert (
        "./packaging/install.sh --jupyterhub[=6|5]  JupyterHub 6 (or 5) with HostdSpawner"
        in shown.stdout
    )
    assert "./packaging/install.sh --purge" in shown.stdout  # the usage block is whole
