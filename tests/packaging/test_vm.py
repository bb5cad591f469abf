"""packaging/vm's pure parts, on the host without booting anything: its options, the recipe
that names the cached image, what a job carries into the guest. Booting it is the real_host
tier's business (packaging/test.sh runs that tier through it)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

VM = Path(__file__).resolve().parents[2] / "packaging" / "vm"


def load() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("hostd_packaging_vm", str(VM))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


vm = load()


def test_options_split_at_the_command() -> None:
    assert vm.parse_options(["--timeout", "5", "--share", "/srv", "--", "ls", "-l"]) == (
        5.0,
        [Path("/srv")],
        ["ls", "-l"],
    )
    assert vm.parse_options(["true", "--timeout"]) == (None, [], ["true", "--timeout"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timeout"], "--timeout needs a value"),
        (["--timeout", "soon"], "not a number of seconds"),
        (["--fast"], "unknown option '--fast'"),
    ],
)
def test_bad_options_are_refused_with_a_reason(args: list[str], message: str) -> None:
    with pytest.raises(vm.VmError, match=message):
        vm.parse_options(args)


def test_the_image_is_named_by_its_recipe_and_the_job_script_is_not_part_of_it() -> None:
    first = vm.image_dir()
    assert first == vm.image_dir()
    assert first.parent == vm.CACHE_ROOT
    assert "job_launcher" in vm.recipe() and "job_script" not in vm.recipe()


def test_the_job_script_compiles_for_the_guests_python() -> None:
    compile(vm.JOB_SCRIPT, "job.py", "exec")


def test_a_job_carries_the_callers_environment_less_what_points_at_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TMPDIR", "/somewhere/on/the/host")
    monkeypatch.setenv("HOSTD_NO_SKIP", "1")
    env = vm.job_env([Path("/work/a"), Path("/srv/venv")])
    assert "TMPDIR" not in env
    assert env["HOSTD_NO_SKIP"] == "1"
    assert (env["HOSTD_VM"], env["HOSTD_VM_SHARES"]) == ("1", "/work/a:/srv/venv")


def test_an_unknown_verb_is_refused_with_the_usage() -> None:
    done = subprocess.run(
        [sys.executable, str(VM), "boot"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "unknown verb 'boot'" in done.stderr and "usage: vm" in done.stderr


@pytest.mark.parametrize(
    ("guest_status", "error"),
    [
        # The job started and has said nothing yet (pytest -q whose first test runs install.sh):
        # booted; here the stand-in QEMU then exits without a status.
        ("hostd-vm-started\n", "the VM stopped"),
        ("", "did not boot to the job"),
    ],
)
def test_a_silent_job_counts_as_booted_once_the_guest_says_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, guest_status: str, error: str
) -> None:
    monkeypatch.setattr(vm, "BOOT_TIMEOUT_S", 0.3)
    status, console, out = tmp_path / "status.log", tmp_path / "console.log", tmp_path / "out.log"
    status.write_text(guest_status)
    console.touch()
    out.touch()
    with subprocess.Popen(["sleep", "1"]) as qemu, pytest.raises(vm.VmError, match=error):
        vm.wait_for(qemu, status, console, out, timeout=None)
