"""The hostd.toml document: the file read, the TOML parsed, problems keyed and collected.

What every section module shares, and nothing about any one section: reading the file
(and /etc/login.defs), tomllib's syntax errors as one problem, a section's table, the dotted
names problems are keyed by, and the "unknown key" messages with their hints. Problems are
gathered as (dotted key, message) in file order; hostd.config raises them together as one
ConfigError at the end, so an admin fixes them all in one go.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hostd.units._text import show
from hostd.units.errors import ConfigError

__all__ = [
    "Problems",
    "SectionKeys",
    "dotted",
    "parse_toml",
    "read_config_text",
    "read_optional_text",
    "section_table",
    "unknown_sections",
    "without_prefix",
]

# (dotted key, message), in the order the file has them.
Problems = list[tuple[str, str]]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def dotted(*parts: str) -> str:
    """A problem's key in TOML's own notation: a part with a space or a dot in it is quoted,
    so ``session.unit_extra_properties."No Such"`` still reads unambiguously."""
    return ".".join(part if _BARE_KEY.fullmatch(part) else f'"{part}"' for part in parts)


def without_prefix(message: str, *labels: str) -> str:
    """message without "label: " in front: SessionPolicy and the directive table name the
    option in their messages, and the dotted key already says it."""
    for label in labels:
        message = message.removeprefix(f"{label}: ")
    return message


def read_config_text(path: Path) -> str:
    """The text of the config file; ConfigError keyed by its path if it cannot be read or is
    not UTF-8."""
    try:
        # utf-8-sig: a byte-order mark some editors write is not a TOML error worth failing on.
        return path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ConfigError([(str(path), f"cannot read: {exc.strerror or exc}")]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [(str(path), f"not UTF-8 (byte {exc.object[exc.start]:#04x} at offset {exc.start})")]
        ) from exc


def read_optional_text(path: Path) -> str | None:
    """The text of a file the config only consults (login.defs), or None if it cannot be
    read; bytes that are not UTF-8 are replaced, never fatal."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def parse_toml(text: str, source: Path | None) -> dict[str, Any]:
    """The TOML document; a syntax error is one ConfigError keyed by source (or
    "<config>"), with tomllib's line and column."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = str(source) if source is not None else "<config>"
        raise ConfigError([(where, f"not valid TOML: {exc}")]) from None


def section_table(data: Mapping[str, object], section: str, problems: Problems) -> dict[str, Any]:
    """The section's table as the file has it; {} (and a problem) if it is not a table."""
    table = data.get(section, {})
    if not isinstance(table, dict):
        problems.append((section, f"expected a table [{section}], not {show(table)}"))
        return {}
    return table


@dataclass(frozen=True)
class SectionKeys:
    """The keys of the sections checked key by key ([daemon], [session]), for the messages
    about a key that is not there: where it belongs instead, or the names near it.

    ``not_settable`` holds keys that exist but may not be written, with the reason.
    """

    sections: Mapping[str, tuple[str, ...]]
    not_settable: Mapping[tuple[str, str], str] = field(default_factory=dict)

    def known(self, section: str, key: str, problems: Problems) -> bool:
        """True if section has key; else False, and the problem added (in file order)."""
        if (section, key) in self.not_settable:
            problems.append((dotted(section, key), self.not_settable[section, key]))
            return False
        if key not in self.sections[section]:
            problems.append((dotted(section, key), self.unknown(section, key)))
            return False
        return True

    def unknown(self, section: str | None, key: str, value: object = None) -> str:
        """The message for a key that section (None: the top level) does not have: where it
        belongs, or the known names near it."""
        noun = "section" if section is None and isinstance(value, dict) else "key"
        for other, keys in self.sections.items():
            if other != section and key in keys:
                return f"unknown {noun}: belongs in [{other}]"
        known = list(self.sections) if section is None else list(self.sections[section])
        hints = difflib.get_close_matches(key, known, n=3)
        if hints:
            return f"unknown {noun} (did you mean {' or '.join(hints)}?)"
        if section is None:
            return f"unknown {noun}: the sections are [daemon] and [session]"
        return f"unknown {noun}"


def unknown_sections(
    data: Mapping[str, object], keys: SectionKeys, others: tuple[str, ...]
) -> Problems:
    """A problem for each top-level name that is neither a key-checked section nor one of
    the others (sections parsed as a whole)."""
    return [
        (dotted(key), keys.unknown(None, key, value))
        for key, value in data.items()
        if key not in keys.sections and key not in others
    ]
