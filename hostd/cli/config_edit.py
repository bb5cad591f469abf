"""`hostctl config`'s edits of one TOML document, keeping its comments and layout (hostd/
layer, pure: the document is given, nothing is read or written here).

tomlkit keeps every comment, blank line and the order of keys; a changed value keeps the
comment at the end of its line. A new key goes after the last key of its table rather than at
the very end, where it would sit under the comments that introduce the next section.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import tomlkit
from tomlkit.items import AoT, Array, Table
from tomlkit.toml_document import TOMLDocument

from hostd.cli.config_keys import ConfigKeyError, Key, mask_secrets

__all__ = ["add_item", "lookup", "remove_item", "render", "set_value", "unset"]

_Tables = MutableMapping[str, Any]


def _plain(value: object) -> object:
    unwrap = getattr(value, "unwrap", None)
    return unwrap() if callable(unwrap) else value


def lookup(document: TOMLDocument, key: Key) -> object | None:
    """The key's value as plain Python (a table as a dict); None if the file does not set it."""
    node: object = document
    for part in key.parts:
        if not isinstance(node, MutableMapping) or part not in node:
            return None
        node = node[part]
    return _plain(node)


def render(value: object) -> str:
    """A value as TOML writes it ("4G" quoted, [1, 2]); a table as TOML lines. URL passwords
    are masked."""
    if isinstance(value, dict):
        return mask_secrets(tomlkit.dumps(value).rstrip("\n"))
    return mask_secrets(tomlkit.item(value).as_string())


def _parent(document: TOMLDocument, key: Key, *, create: bool) -> _Tables | None:
    """The table that holds the key's last part; made (as [a.b.c]) if create, else None when
    missing. ConfigKeyError if a part on the way is a value, not a table."""
    node: _Tables = document
    for depth, part in enumerate(key.parts[:-1]):
        if part not in node:
            if not create:
                return None
            # Only the innermost new table gets a [header] of its own: [profiles.users.alice],
            # not empty [profiles] and [profiles.users] above it.
            innermost = depth == len(key.parts) - 2
            node[part] = tomlkit.table(is_super_table=not innermost)
        child = node[part]
        if not isinstance(child, MutableMapping):
            shown = ".".join(key.parts[: depth + 1])
            raise ConfigKeyError(f"{shown} is a value, not a table: cannot set {key} in it")
        node = child
    return node


def _insert(table: _Tables, name: str, value: object) -> None:
    """Add name = value after the table's last plain key, or in a table of comments only
    after its first paragraph of them (see the module's docstring)."""
    if isinstance(table, Table) and not table.is_super_table():
        body = table.value.body
        keyed = [
            index
            for index, (item_key, item) in enumerate(body)
            if item_key is not None and not isinstance(item, Table | AoT)
        ]
        if keyed and keyed[-1] + 1 < len(body):
            # tomlkit has no public "insert after"; _insert_at keeps the container's index.
            table.value._insert_at(keyed[-1] + 1, name, tomlkit.item(value))
            return
        if not keyed:
            # A table of comments only (the shipped [commands]): after its own comments, at
            # the first blank line, before those that introduce the next section.
            blank = next(
                (i for i, (k, item) in enumerate(body) if k is None and item.as_string() == "\n"),
                None,
            )
            if blank is not None and blank + 1 < len(body):
                table.value._insert_at(blank, name, tomlkit.item(value))
                return
    table[name] = value


def _width(item: object) -> int:
    as_string = getattr(item, "as_string", None)
    return len(as_string()) if callable(as_string) else 0


def _keep_comment_column(item: object, old_width: int) -> None:
    """Move a line's end comment back to the column it had before the value changed width:
    the shipped files align their comments."""
    trivia = getattr(item, "trivia", None)
    if trivia is not None and trivia.comment:
        trivia.comment_ws = " " * max(1, old_width + len(trivia.comment_ws) - _width(item))


def set_value(document: TOMLDocument, key: Key, value: object) -> object | None:
    """Set the key (making its tables); returns the value it had, None if unset."""
    parent = _parent(document, key, create=True)
    assert parent is not None  # made when missing
    name = key.parts[-1]
    if name not in parent:
        _insert(parent, name, value)
        return None
    old_item = parent[name]
    old, old_width = _plain(old_item), _width(old_item)
    parent[name] = value  # tomlkit keeps the comment at the end of the line
    _keep_comment_column(parent[name], old_width)
    return old


def unset(document: TOMLDocument, key: Key) -> object | None:
    """Remove the key; returns the value it had, None if it was not set."""
    parent = _parent(document, key, create=False)
    name = key.parts[-1]
    if parent is None or name not in parent:
        return None
    old = _plain(parent[name])
    del parent[name]
    return old


def _list(document: TOMLDocument, key: Key, *, create: bool) -> Array | None:
    parent = _parent(document, key, create=create)
    name = key.parts[-1]
    if parent is None or name not in parent:
        if not create:
            return None
        assert parent is not None
        _insert(parent, name, [])
    found = parent[name]
    if not isinstance(found, Array):
        raise ConfigKeyError(f"{key} is {render(_plain(found))}, not a list")
    return found


def add_item(document: TOMLDocument, key: Key, value: object) -> bool:
    """Append value to the key's list (made if unset); False if it is there already."""
    items = _list(document, key, create=True)
    assert items is not None
    if value in items:
        return False
    old_width = _width(items)
    items.append(value)
    _keep_comment_column(items, old_width)
    return True


def remove_item(document: TOMLDocument, key: Key, value: object) -> bool:
    """Remove value from the key's list; False if the list does not hold it."""
    items = _list(document, key, create=False)
    if items is None or value not in items:
        return False
    old_width = _width(items)
    del items[[_plain(item) for item in items].index(value)]
    _keep_comment_column(items, old_width)
    return True
