"""Just enough JSON Schema (2020-12) to check the daemon's answers against api/openapi.py.

No validator library is a dependency of hostd; this one knows the keywords the document uses,
and KEYWORDS lets a test prove the document uses no other (else a check would pass silently).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

KEYWORDS = frozenset(
    {
        "$ref",
        "type",
        "enum",
        "required",
        "properties",
        "additionalProperties",
        "propertyNames",
        "items",
        "oneOf",
        "minimum",
        "maximum",
        "pattern",
        "maxLength",
        # annotations, no assertion
        "description",
        "default",
    }
)


def _is_type(value: Any, name: str) -> bool:
    match name:
        case "null":
            return value is None
        case "boolean":
            return isinstance(value, bool)
        case "integer":
            return isinstance(value, int) and not isinstance(value, bool)
        case "number":
            return isinstance(value, int | float) and not isinstance(value, bool)
        case "string":
            return isinstance(value, str)
        case "array":
            return isinstance(value, list)
        case "object":
            return isinstance(value, dict)
    raise AssertionError(f"unknown type {name!r}")


def resolve(document: Mapping[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def errors(document: Mapping[str, Any], schema: Any, value: Any, at: str = "$") -> Iterator[str]:
    """Why ``value`` does not validate against ``schema`` (nothing if it does)."""
    unknown = set(schema) - KEYWORDS
    assert not unknown, f"schema keywords this checker does not know: {unknown}"
    if "$ref" in schema:
        yield from errors(document, resolve(document, schema["$ref"]), value, at)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, name) for name in types):
            yield f"{at}: {value!r} is not of type {types}"
            return
    if "enum" in schema and value not in schema["enum"]:
        yield f"{at}: {value!r} is not one of {schema['enum']}"
    if "oneOf" in schema:
        matching = [s for s in schema["oneOf"] if not list(errors(document, s, value, at))]
        if len(matching) != 1:
            yield f"{at}: {value!r} matches {len(matching)} of oneOf, not exactly 1"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            yield f"{at}: {value} < {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            yield f"{at}: {value} > {schema['maximum']}"
    if isinstance(value, str):
        if "pattern" in schema and re.search(schema["pattern"], value) is None:
            yield f"{at}: {value!r} does not match {schema['pattern']!r}"
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            yield f"{at}: longer than {schema['maxLength']}"
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            yield from errors(document, schema["items"], item, f"{at}[{i}]")
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                yield f"{at}: {name!r} is required"
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if "propertyNames" in schema:
                yield from errors(document, schema["propertyNames"], name, f"{at} key {name!r}")
            if name in properties:
                yield from errors(document, properties[name], item, f"{at}.{name}")
            elif extra is False:
                yield f"{at}: {name!r} is not allowed"
            elif isinstance(extra, dict):
                yield from errors(document, extra, item, f"{at}.{name}")


def walk_schemas(node: Any) -> Iterator[dict[str, Any]]:
    """Every schema object in a part of the document (for the keyword check)."""
    if isinstance(node, dict):
        if "type" in node or "$ref" in node or "oneOf" in node:
            yield node
        for key, value in node.items():
            if key not in ("properties", "enum", "required"):
                yield from walk_schemas(value)
            elif key == "properties":
                for schema in value.values():
                    yield from walk_schemas(schema)
    elif isinstance(node, list):
        for item in node:
            yield from walk_schemas(item)
