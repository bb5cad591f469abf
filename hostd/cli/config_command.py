"""`hostctl config show|get|set|unset|add-item|remove-item` and `hostctl reload`: their
arguments and what they print (hostd/ layer; the keys are hostd.cli.config_keys, the edits
hostd.cli.config_edit, the file work hostd.cli.config_files, the restarts hostd.cli.reload).

They need no daemon: they read and write /etc/hostd/hostd.toml and /etc/hostd/hub.toml
(root's files) and restart the services with systemctl. Exit status: 0 done, 1 refused or
failed (every reason printed), 2 a usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, TextIO

from hostd.cli import config_edit, config_files
from hostd.cli.config_keys import (
    ConfigFile,
    ConfigKeyError,
    Key,
    mask_secrets,
    parse_key,
    parse_value,
)
from hostd.config import DEFAULT_CONFIG_PATH

__all__ = [
    "DEFAULT_HUB_CONFIG_PATH",
    "add_config_parsers",
    "print_refusal",
    "run_config",
    "run_reload",
]

DEFAULT_HUB_CONFIG_PATH: Final = Path("/etc/hostd/hub.toml")


def _paths_parent() -> argparse.ArgumentParser:
    paths = argparse.ArgumentParser(add_help=False)
    paths.add_argument(
        "--config",
        metavar="PATH",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        help=f"the daemon's config (default {DEFAULT_CONFIG_PATH})",
    )
    paths.add_argument(
        "--hub-config",
        metavar="PATH",
        type=Path,
        default=DEFAULT_HUB_CONFIG_PATH,
        help=f"the hub's config (default {DEFAULT_HUB_CONFIG_PATH})",
    )
    return paths


def add_config_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `config` (with its actions) and `reload` to hostctl's commands."""
    paths = _paths_parent()
    config = commands.add_parser(
        "config",
        help="show or change hostd.toml and hub.toml (checked before written)",
        description=(
            "Keys are dotted: session.mem_limit, auth.admin_users, hub.port (hub.toml). "
            "tljh-config's names work too: limits.memory, limits.cpu, users.admin, "
            "services.cull.timeout, https.tls.cert, https.tls.key. A VALUE is TOML (4, true, "
            '"x", [1, 2]) or else a word taken as a string (4G). Apply: hostctl reload.'
        ),
    )
    actions = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", parents=[paths], help="print the files")
    show.add_argument("which", nargs="?", choices=("daemon", "hub"), help="default both")
    get = actions.add_parser("get", parents=[paths], help="print one value, as TOML")
    get.add_argument("key", metavar="KEY")
    set_ = actions.add_parser(
        "set", parents=[paths], help="set KEY to VALUE (several pairs: one checked edit)"
    )
    set_.add_argument("pairs", metavar="KEY VALUE", nargs="+")
    unset = actions.add_parser("unset", parents=[paths], help="remove keys: their defaults apply")
    unset.add_argument("keys", metavar="KEY", nargs="+")
    for name, verb in (("add-item", "append VALUE to"), ("remove-item", "remove VALUE from")):
        item = actions.add_parser(name, parents=[paths], help=f"{verb} the list KEY")
        item.add_argument("key", metavar="KEY")
        item.add_argument("value", metavar="VALUE")

    reload = commands.add_parser(
        "reload",
        parents=[paths],
        help="check the config, restart hostd and/or the hub, wait until they answer (root)",
    )
    reload.add_argument("which", nargs="?", choices=("daemon", "hub"), help="default both")
    reload.add_argument(
        "--timeout", metavar="S", type=float, default=60.0, help="wait at most S s (default 60)"
    )


# What an edit said it did, and the files it wrote.
_Done = tuple[list[str], tuple[Path, ...]]


def _paths(args: argparse.Namespace) -> dict[ConfigFile, Path]:
    return {"daemon": args.config, "hub": args.hub_config}


def _show(args: argparse.Namespace, out: TextIO) -> None:
    paths = _paths(args)
    chosen: Sequence[ConfigFile] = (args.which,) if args.which else ("daemon", "hub")
    for number, file in enumerate(chosen):
        text, _ = config_files.read_document(paths[file], file)
        if len(chosen) > 1:
            print(f"{'' if number == 0 else chr(10)}# ==> {paths[file]} <==", file=out)
        if text is None:
            print("# (no such file: every default applies)", file=out)
        else:
            print(mask_secrets(text).rstrip("\n"), file=out)


def _get(args: argparse.Namespace, out: TextIO) -> int:
    key = parse_key(args.key)
    path = _paths(args)[key.file]
    _, document = config_files.read_document(path, key.file)
    value = config_edit.lookup(document, key)
    if value is None:
        print(f"hostctl config: {key} is not set in {path}: its default applies", file=sys.stderr)
        return 1
    if isinstance(value, dict):
        # A table as the file would have it: [session], [session.environment].
        for part in reversed(key.parts):
            value = {part: value}
    print(config_edit.render(value), file=out)
    return 0


def _named(key: Key) -> str:
    return f"{key} (tljh-config's {key.alias})" if key.alias else str(key)


def _value_key(text: str) -> Key:
    key = parse_key(text)
    if key.is_section:
        raise ConfigKeyError(f"{key} is a section: name a key in it, like {key}.<key>")
    return key


def _set(args: argparse.Namespace) -> _Done:
    if len(args.pairs) % 2:
        raise ConfigKeyError(f"set takes KEY VALUE pairs; {args.pairs[-1]!r} has no value")
    pairs = [
        (_value_key(k), parse_value(v))
        for k, v in zip(args.pairs[::2], args.pairs[1::2], strict=True)
    ]
    lines: list[str] = []

    def change(documents: config_files.Documents) -> None:
        for key, value in pairs:
            old = config_edit.set_value(documents[key.file], key, value)
            was = "unset" if old is None else config_edit.render(old)
            lines.append(f"{_named(key)} = {config_edit.render(value)} (was {was})")

    return lines, _edit(args, {key.file for key, _ in pairs}, change)


def _unset(args: argparse.Namespace) -> _Done:
    keys = [_value_key(text) for text in args.keys]
    lines: list[str] = []

    def change(documents: config_files.Documents) -> None:
        for key in keys:
            old = config_edit.unset(documents[key.file], key)
            state = "was not set" if old is None else f"was {config_edit.render(old)}"
            lines.append(f"{_named(key)} unset ({state}): its default applies")

    return lines, _edit(args, {key.file for key in keys}, change)


def _item(args: argparse.Namespace) -> _Done:
    key, value = _value_key(args.key), parse_value(args.value)
    shown = config_edit.render(value)
    lines: list[str] = []

    def change(documents: config_files.Documents) -> None:
        document = documents[key.file]
        if args.action == "add-item":
            added = config_edit.add_item(document, key, value)
            lines.append(f"{_named(key)}: {'added' if added else 'already holds'} {shown}")
        elif not config_edit.remove_item(document, key, value):
            raise ConfigKeyError(f"{_named(key)} does not hold {shown}")
        else:
            lines.append(f"{_named(key)}: removed {shown}")

    return lines, _edit(args, {key.file}, change)


def _edit(
    args: argparse.Namespace,
    files: set[ConfigFile],
    change: Callable[[config_files.Documents], None],
) -> tuple[Path, ...]:
    paths = {file: path for file, path in _paths(args).items() if file in files}
    return config_files.edit(paths, change).written


_ACTIONS: Final = {"set": _set, "unset": _unset, "add-item": _item, "remove-item": _item}


def print_refusal(command: str, exc: ConfigKeyError | OSError, err: TextIO) -> int:
    """Say why an edit of the config files was refused or failed; the exit status (1)."""
    if isinstance(exc, ConfigKeyError):
        print(f"{command}: {exc.message}", file=err)
        for problem in exc.problems:
            print(f"  {problem}", file=err)
    else:
        where = f" {exc.filename}" if exc.filename else ""
        print(f"{command}: cannot write{where}: {exc.strerror or exc}", file=err)
    return 1


def run_config(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run `hostctl config ACTION`; the exit status. Never a traceback for bad input."""
    try:
        if args.action == "show":
            _show(args, out)
            return 0
        if args.action == "get":
            return _get(args, out)
        lines, written = _ACTIONS[args.action](args)
    except (ConfigKeyError, OSError) as exc:
        return print_refusal("hostctl config", exc, err)
    for line in lines:
        print(line, file=out)
    if written:
        targets = sorted({_file_of(args, path) for path in written})
        which = targets[0] if len(targets) == 1 else ""
        print(
            f"wrote {', '.join(map(str, written))}; apply: hostctl reload {which}".rstrip(),
            file=out,
        )
    else:
        print("nothing changed", file=out)
    return 0


def _file_of(args: argparse.Namespace, path: Path) -> ConfigFile:
    return "hub" if path.resolve() == Path(args.hub_config).resolve() else "daemon"


def run_reload(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run `hostctl reload [daemon|hub]`; the exit status."""
    from hostd.cli.reload import Target, reload

    chosen: Sequence[ConfigFile] = (args.which,) if args.which else ("daemon", "hub")
    targets = [Target(file, _paths(args)[file]) for file in chosen]
    return reload(
        targets, explicit=args.which is not None, out=out, err=err, timeout_s=args.timeout
    )
