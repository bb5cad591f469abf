"""`hostctl import FILE` and `hostctl export --to z2jh`: migrations in and out (hostd/ layer;
the readers are hostd.cli.import_jupyterhub and import_tljh, the writer hostd.cli.export_z2jh,
the file work hostd.cli.config_files, as `hostctl config` does it).

`import` shows what it would change (a unified diff of hostd.toml and hub.toml as they would
become) and what it leaves out, and writes nothing; with --apply it writes both files
atomically, after the checks of `hostctl check-config` (a refused import writes neither).
Exit status: 0 done (or would be accepted), 1 refused (every reason printed), 2 a usage error.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, TextIO

import tomlkit

from hostd.cli import config_edit, config_files
from hostd.cli.config_command import DEFAULT_HUB_CONFIG_PATH, print_refusal
from hostd.cli.config_keys import ConfigFile, ConfigKeyError, mask_secrets, parse_key
from hostd.cli.import_jupyterhub import read_jupyterhub_config
from hostd.cli.import_plan import ImportPlan, ImportRefused, Setting
from hostd.cli.import_tljh import read_tljh_config
from hostd.config import DEFAULT_CONFIG_PATH

__all__ = [
    "DEFAULT_HOSTD_PREFIX",
    "FILE_MAX_BYTES",
    "add_migrate_parsers",
    "import_edit",
    "import_plan",
    "run_export",
    "run_import",
    "singleuser_command",
]

DEFAULT_HOSTD_PREFIX: Final = Path("/opt/hostd")  # install.sh's
FILE_MAX_BYTES: Final = 1 << 20  # a config file, not a data set
_READERS: Final[Mapping[str, Callable[..., ImportPlan]]] = {
    "jupyterhub": read_jupyterhub_config,
    "tljh": read_tljh_config,
}
_SUFFIXES: Final = {".py": "jupyterhub", ".yaml": "tljh", ".yml": "tljh"}


def add_migrate_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `import` and `export` to hostctl's commands."""
    imp = commands.add_parser(
        "import",
        help="carry a jupyterhub_config.py's or TLJH config.yaml's settings into hostd.toml "
        "and hub.toml (shows the diff; --apply writes)",
        description=(
            "Reads FILE without running it (jupyterhub_config.py is parsed, never executed), "
            "shows the diff of hostd.toml and hub.toml as they would become and what is not "
            "carried over, and writes nothing unless --apply. Apply then: hostctl reload."
        ),
    )
    imp.add_argument("file", metavar="FILE", type=Path)
    imp.add_argument(
        "--format",
        choices=sorted(_READERS),
        help="FILE's format (default: by its name: *.py jupyterhub, *.yaml/*.yml tljh)",
    )
    imp.add_argument(
        "--apply",
        "--write",
        action="store_true",
        help="write the files (after the checks of hostctl check-config)",
    )
    imp.add_argument(
        "--listen",
        choices=("port", "socket"),
        default="port",
        help="how [commands] singleuser's server listens, when hostd.toml has none: on a "
        "loopback {PORT} (any JupyterHub; the default) or on its Unix {SOCKET} (JupyterHub 6 "
        "with its user in [daemon] proxy_group)",
    )
    imp.add_argument(
        "--hostd-prefix",
        metavar="DIR",
        type=Path,
        default=DEFAULT_HOSTD_PREFIX,
        help=f"where install.sh put hostd, for [commands] singleuser (default "
        f"{DEFAULT_HOSTD_PREFIX})",
    )
    _paths(imp)

    exp = commands.add_parser(
        "export",
        help="write hostd's config as another system's: a Zero to JupyterHub Helm values file",
    )
    exp.add_argument("--to", required=True, choices=("z2jh",), help="the target: z2jh")
    exp.add_argument(
        "-o", "--output", metavar="FILE", type=Path, help="write here (default: print it)"
    )
    exp.add_argument(
        "--config",
        metavar="PATH",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        help=f"the daemon's config (default {DEFAULT_CONFIG_PATH})",
    )


def _paths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        help=f"the daemon's config (default {DEFAULT_CONFIG_PATH})",
    )
    parser.add_argument(
        "--hub-config",
        metavar="PATH",
        type=Path,
        default=DEFAULT_HUB_CONFIG_PATH,
        help=f"the hub's config (default {DEFAULT_HUB_CONFIG_PATH})",
    )


# -- import ---------------------------------------------------------------------------------


def _format_of(path: Path, given: str | None) -> str:
    if given is not None:
        return given
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise ImportRefused(
            f"unknown format of {path}: expected a jupyterhub_config.py (*.py) or TLJH's "
            "config.yaml (*.yaml, *.yml); or say which: --format jupyterhub|tljh"
        )
    return found


def _read_text(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(FILE_MAX_BYTES + 1)
    except FileNotFoundError:
        raise ImportRefused(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImportRefused(f"{path} is a directory: name the file") from None
    except OSError as exc:
        raise ImportRefused(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > FILE_MAX_BYTES:
        raise ImportRefused(f"{path} is over {FILE_MAX_BYTES >> 20} MiB: not a config file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRefused(f"{path} is not UTF-8 text: not a config file") from None
    if "\x00" in text:
        raise ImportRefused(f"{path} holds NUL bytes: not a config file")
    return text


def import_plan(path: Path, given_format: str | None = None) -> ImportPlan:
    """What FILE says, for hostd; ImportRefused if it cannot be read as its format."""
    kind = _format_of(path, given_format)
    plan = _READERS[kind](_read_text(path), name=str(path))
    for setting in list(plan.settings):
        try:
            tomlkit.item(setting.value)
        except (TypeError, ValueError):
            plan.settings.remove(setting)
            plan.leave_out(setting.origin, f"{setting.value!r} is not a value TOML can hold")
    return plan


def singleuser_command(prefix: Path, listen: str) -> list[str]:
    """[commands] singleuser as the README gives it: hostd-session-exec, which hands the API
    token over as a file, then jupyterhub-singleuser of the session environment."""
    head = [
        str(prefix / "bin" / "hostd-session-exec"),
        str(prefix / "session" / "bin" / "jupyterhub-singleuser"),
    ]
    if listen == "socket":
        # --ServerApp.port=8888 is the default said again: jupyter_server refuses a socket
        # with any other port, and jupyterhub-singleuser would pass JupyterHub's.
        return [
            *head,
            "--ServerApp.sock={SOCKET}",
            "--ServerApp.sock_mode=0660",
            "--ServerApp.port=8888",
        ]
    return [*head, "--ip=127.0.0.1", "--port={PORT}"]


def _toml_value(value: object) -> object:
    """Tables as inline tables: [session] keeps its keys on one level, as the shipped file."""
    if isinstance(value, dict):
        table = tomlkit.inline_table()
        table.update({key: _toml_value(item) for key, item in value.items()})
        return table
    return value


def _render(value: object) -> str:
    """A value as it will read in the file: tables inline, as the shipped file has them."""
    return mask_secrets(tomlkit.item(_toml_value(value)).as_string())


def _apply_setting(documents: config_files.Documents, setting: Setting) -> str:
    key = parse_key(setting.key)
    document = documents[key.file]
    if setting.merge and isinstance(setting.value, list):
        added = [item for item in setting.value if config_edit.add_item(document, key, item)]
        shown = _render(added) if added else "nothing new"
        return f"{key}: added {shown}  <- {setting.origin}"
    old = config_edit.set_value(document, key, _toml_value(setting.value))
    if old == setting.value:
        return f"{key} = {_render(setting.value)} (unchanged)  <- {setting.origin}"
    was = "unset" if old is None else _render(old)
    return f"{key} = {_render(setting.value)} (was {was})  <- {setting.origin}"


def import_edit(
    plan: ImportPlan,
    files: Mapping[ConfigFile, Path],
    *,
    listen: str = "port",
    hostd_prefix: Path = DEFAULT_HOSTD_PREFIX,
    write: bool = False,
    check: bool = True,
    lines: list[str] | None = None,
    refusal: str = "refused, nothing written",
) -> config_files.Edited:
    """Carry the plan into the files, as `hostctl config` edits them (config_files.edit: the
    checks of check-config unless check=False; written only if write). ``lines`` gets one line
    per setting: what it was, what it becomes, where it came from."""
    said = [] if lines is None else lines

    def change(documents: config_files.Documents) -> None:
        for setting in plan.settings:
            said.append(_apply_setting(documents, setting))
        if plan.command_name is not None:
            key = parse_key(f"commands.{plan.command_name}")
            if config_edit.lookup(documents["daemon"], key) is None:
                argv = singleuser_command(hostd_prefix, listen)
                config_edit.set_value(documents["daemon"], key, argv)
                said.append(f"{key} = {_render(argv)} (was unset)  <- HostdSpawner")
            else:
                said.append(f"{key}: kept as hostd.toml has it")

    return config_files.edit(files, change, write=write, check=check, refusal=refusal)


def _diff(path: Path, old: str | None, new: str) -> list[str]:
    return list(
        difflib.unified_diff(
            (old or "").splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=str(path) if old is not None else "/dev/null",
            tofile=str(path),
        )
    )


def _print_plan(plan: ImportPlan, lines: list[str], out: TextIO) -> None:
    print(f"from {plan.source}:", file=out)
    for line in lines:
        print(f"  {line}", file=out)
    if plan.not_carried:
        print("not carried over:", file=out)
        for item in plan.not_carried:
            print(f"  {item.origin}: {item.reason}", file=out)
    if plan.notes:
        print("notes:", file=out)
        for note in plan.notes:
            print(f"  {note}", file=out)


def run_import(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run `hostctl import FILE [--apply]`; the exit status. Never a traceback."""
    try:
        plan = import_plan(args.file, args.format)
    except ImportRefused as exc:
        print(f"hostctl import: {exc.message}", file=err)
        return 1
    files: dict[ConfigFile, Path] = {"daemon": args.config, "hub": args.hub_config}
    lines: list[str] = []
    options: dict[str, Any] = {"listen": args.listen, "hostd_prefix": args.hostd_prefix}
    try:
        # First what would change, unchecked: the admin sees the diff of a refused import too.
        preview = import_edit(plan, files, **options, check=False, lines=lines)
        for path, old, new in preview.changes:
            out.writelines(_diff(path, old, new))
        _print_plan(plan, lines, out)
        verdict = "refused, nothing written" if args.apply else "would be refused"
        edited = import_edit(
            plan,
            files,
            **options,
            write=args.apply,
            refusal=f"{verdict}: the result does not pass hostctl check-config",
        )
    except (ConfigKeyError, OSError) as exc:
        return print_refusal("hostctl import", exc, err)
    if not edited.changes:
        print("nothing to change: hostd's config already says all of it", file=out)
    elif edited.written:
        print(f"wrote {', '.join(map(str, edited.written))}; apply: hostctl reload", file=out)
    else:
        print("checked, nothing written; to write it: the same command with --apply", file=out)
    return 0


# -- export ---------------------------------------------------------------------------------


def run_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run `hostctl export --to z2jh [-o FILE]`; the exit status. Never a traceback."""
    from hostd.cli.export_z2jh import ExportRefused, export_z2jh

    try:
        text = export_z2jh(args.config)
    except ExportRefused as exc:
        print(f"hostctl export: {exc}", file=err)
        return 1
    if args.output is None:
        out.write(text)
        return 0
    try:
        like = args.output.stat() if args.output.exists() else None
        config_files.write_atomically(args.output, text, like)
    except OSError as exc:
        print(f"hostctl export: cannot write {args.output}: {exc.strerror or exc}", file=err)
        return 1
    print(
        f"wrote {args.output} (Zero to JupyterHub values: helm upgrade --install ... -f "
        f"{args.output})",
        file=out,
    )
    return 0
