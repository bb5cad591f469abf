"""Reading what a browser or a script sends the hub, within bounds (api layer; pure).

Every body is read with a limit, and every way it can be wrong (too big, not a form, not
UTF-8, too many fields) is one BadInput with a message for people: a hostile or broken
request gets a 400 page or body (413 for one over the limit: ``TooLarge``), never a 500.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Final
from urllib.parse import parse_qsl

from starlette.requests import Request

from hostd.units.errors import InvalidInput

__all__ = [
    "FORM_MAX_BYTES",
    "JSON_MAX_BYTES",
    "BadInput",
    "TooLarge",
    "read_body",
    "read_form",
    "read_json",
]

FORM_MAX_BYTES: Final = 16 * 1024  # a login form is a few hundred bytes
JSON_MAX_BYTES: Final = 64 * 1024
_MAX_FIELDS: Final = 20
_FORM_TYPE: Final = "application/x-www-form-urlencoded"


class BadInput(InvalidInput):
    """Raised for a body that cannot be used: too big, not the expected kind, or broken."""

    code = "bad-request"
    status: ClassVar[int] = 400


class TooLarge(BadInput):
    """Raised for a body over its limit (a declared Content-Length, or the bytes that came)."""

    code = "too-large"
    status = 413


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the request is too big (over {limit} bytes)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"the request is too big (over {limit} bytes)")
    return bytes(body)


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form as {name: first value}."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != _FORM_TYPE:
        raise BadInput(f"expected a form ({_FORM_TYPE})")
    body = await read_body(request, FORM_MAX_BYTES)
    try:
        pairs = parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=_MAX_FIELDS,
        )
    except ValueError as exc:  # UnicodeDecodeError is one
        raise BadInput("the form could not be read (not UTF-8, or too many fields)") from exc
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


async def read_json(request: Request) -> dict[str, Any]:
    """A JSON object body ({} when empty)."""
    body = await read_body(request, JSON_MAX_BYTES)
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadInput("the request body is not JSON") from exc
    if not isinstance(data, dict):
        raise BadInput("the request body must be a JSON object")
    return data
