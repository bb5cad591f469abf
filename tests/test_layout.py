"""The rooms of the tree: import contracts, one import name, public faces, package pages.

Models: httpx's tests/test_exported_members.py (a module's ``__all__`` is its public face) and
cockpit's one-page-per-security-context (each package's docstring says who loads it, as whom,
and what it must never do).
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

import hostd

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def all_modules() -> list[str]:
    names = ["hostd"]
    for info in pkgutil.walk_packages(hostd.__path__, "hostd."):
        names.append(info.name)
    return sorted(names)


def packages() -> list[str]:
    return [name for name in all_modules() if hasattr(importlib.import_module(name), "__path__")]


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


# -- the import contracts ------------------------------------------------------------------


def test_the_tree_keeps_every_import_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


def copy_tree(into: Path) -> Path:
    """A copy of the package with the links resolved, to break a contract in."""
    target = into / "hostd"
    shutil.copytree(
        ROOT / "hostd",
        target,
        symlinks=False,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return target


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("units/_text.py", "import hostd.daemon.store", "floor"),
        ("units/sizes.py", "import httpx", "floor"),
        ("cgroups/parse.py", "import hostd.units.errors", "floor-rooms"),
        ("api/hub/state.py", "import hostd.config", "unprivileged"),
        ("api/client.py", "import starlette.responses", "no-server-framework"),
        ("api/daemon.py", "import psutil", "http-face"),
        ("daemon/store.py", "import hostd.busworker.worker", "helpers"),
        ("config/profiles.py", "import hostd.cli.hostctl", "layers"),
        ("units/names.py", "import hostd.units.build", "acyclic"),
    ],
)
def test_a_violating_import_fails_the_check(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    tree = copy_tree(tmp_path)
    path = tree / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    names = {
        "floor": "the ground floor imports nothing above it",
        "floor-rooms": "units and cgroups do not lean on each other",
        "unprivileged": "the unprivileged side never loads the root side",
        "no-server-framework": "need no server framework",
        "http-face": "knows no host",
        "helpers": "its helper processes do",
        "layers": "layers of hostd",
        "acyclic": "no import cycles anywhere",
    }
    broken = [text for text in result.stdout.splitlines() if " BROKEN" in text]
    assert any(names[contract] in text for text in broken), result.stdout


# -- one import name -----------------------------------------------------------------------


def test_an_installed_hostd_adds_one_top_level_name(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("hostd-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {
        "hostd",
        wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info",
    }
    for expected in (
        "hostd/units/errors.py",
        "hostd/cgroups/reader.py",
        "hostd/api/spawner.py",
        "hostd/api/hub/templates/home.html",
        "hostd/py.typed",
    ):
        assert expected in names
    entry_points = zipfile.ZipFile(wheel).read(
        next(name for name in names if name.endswith("entry_points.txt"))
    )
    assert b"hostd = hostd.api.spawner:HostdSpawner" in entry_points
    assert b"hostd-hub = hostd.api.hub.cli:main" in entry_points


# -- public faces --------------------------------------------------------------------------


def defined_here(module: ModuleType) -> set[str]:
    """Public classes and functions whose home is this module."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", None) == module.__name__
    }


@pytest.mark.parametrize("name", all_modules())
def test_every_module_says_its_public_face(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
    missing = [item for item in exported if not hasattr(module, item)]
    assert not missing, f"{name}.__all__ names what it does not have: {missing}"
    unlisted = sorted(defined_here(module) - set(exported))
    assert not unlisted, f"{name} defines public names outside __all__: {unlisted}"


# -- a page per package --------------------------------------------------------------------


@pytest.mark.parametrize("name", packages())
def test_every_package_says_who_loads_it_as_whom_and_what_it_must_never_do(name: str) -> None:
    doc = importlib.import_module(name).__doc__ or ""
    for label in ("Loaded by:", "As:", "Never:"):
        assert label in doc, f"{name}'s docstring lacks {label!r}"
