"""POST /hub/api/users/{name}/activity: what jupyterhub-singleuser reports (api layer).

The body is JupyterHub's: ``{"last_activity": <ISO 8601>, "servers": {"": {"last_activity":
...}}}``, either key or both. The user's own token (or cookie with X-XSRFToken), or an
admin's, may report; JupyterHub's answers: 200 with no body, 400 for a body it cannot use
(a bad timestamp, one more than an hour ahead, a server name other than "", which is the one
server a hostd user has), 403 for another user, 404 for a user the hub has never seen.

The latest report wins (an older one does not move last_activity back). A server report
that is recent also resets the daemon's idle clock, as the proxy's traffic does: an old one
(a client that was asleep) must not keep an idle server alive.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from hostd.api.hub.api import HubAPI, api_error
from hostd.api.hub.forms import read_json

__all__ = ["ActivityAPI", "BadTimestamp", "parse_timestamp"]

_SERVERS_SHAPE: Final = (
    "servers must be a dict of the form {server_name: {last_activity: timestamp}}"
)
_FUTURE_MAX: Final = timedelta(minutes=59)  # JupyterHub's
# jupyterhub-singleuser reports every JUPYTERHUB_ACTIVITY_INTERVAL (300 s by default): a
# report within that is the server being used now.
RECENT: Final = timedelta(seconds=300)
_TIMESTAMP_MAX_CHARS: Final = 64


class BadTimestamp(ValueError):
    pass


def parse_timestamp(value: object, now: datetime) -> datetime:
    """An aware UTC datetime from ISO 8601 text (naive: UTC, as JupyterHub reads it)."""
    if not isinstance(value, str) or len(value) > _TIMESTAMP_MAX_CHARS:
        raise BadTimestamp(f"Not a valid timestamp: {str(value)[:_TIMESTAMP_MAX_CHARS]!r}")
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise BadTimestamp(f"Not a valid timestamp: {value!r}") from None
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    if at - now > _FUTURE_MAX:
        raise BadTimestamp(
            f"Rejecting activity from more than an hour in the future: {at.isoformat()}"
        )
    return at


def _server_times(servers: object, user: str, now: datetime) -> list[datetime]:
    if not isinstance(servers, dict):
        raise BadTimestamp(_SERVERS_SHAPE)
    times = []
    for name, info in servers.items():
        if name != "":
            raise BadTimestamp(f"No such server '{str(name)[:64]}' for user {user}")
        if not isinstance(info, dict) or "last_activity" not in info:
            raise BadTimestamp(_SERVERS_SHAPE)
        times.append(parse_timestamp(info["last_activity"], now))
    return times


class ActivityAPI:
    def __init__(self, api: HubAPI) -> None:
        self.api = api
        self.hub = api.hub

    async def activity(self, request: Request) -> Response:
        _, user = await self.api.for_user(request)
        if await asyncio.to_thread(self.hub.store.user, user) is None:
            return api_error(404, f"No such user: {user}")
        body: dict[str, Any] = await read_json(request)
        last_activity, servers = body.get("last_activity"), body.get("servers")
        if not last_activity and not servers:
            return api_error(400, "body must contain at least one of `last_activity` or `servers`")
        now = datetime.now(UTC)
        try:
            server_times = _server_times(servers, user, now) if servers else []
            user_time = parse_timestamp(last_activity, now) if last_activity else None
        except BadTimestamp as exc:
            return api_error(400, str(exc))
        latest = max([*server_times, *([user_time] if user_time else [])])
        if not await asyncio.to_thread(self.hub.store.record_activity, user, latest):
            return api_error(404, f"No such user: {user}")  # removed meanwhile
        if server_times and now - max(server_times) <= RECENT:
            self.hub.activity.seen(user)
        return Response(status_code=200)
