"""JupyterHub's URLs that people bookmark and tools link to (api layer).

    GET /hub/user-redirect/<path>   302 to /user/<whoever is logged in>/<path> (the query
                                    kept), through the login page first; a link that works
                                    for everyone, as in course material ("open this notebook")
    GET /hub/spawn-pending/<name>   the server's state with the progress bar of a start and
                                    the stop button; a ready server redirects to it

With subdomain_host the redirect stays a path on the hub's origin: SubdomainGate sends every
/user/<name>/ there on to that user's origin, so one rule serves both modes.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import quote, unquote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from hostd.api.hub.pages import Pages
from hostd.api.hub.servers import server_url
from hostd.api.hub.state import Hub
from hostd.units import validate_username
from hostd.units.errors import InvalidInput

__all__ = ["USER_REDIRECT", "Shortcuts"]

USER_REDIRECT: Final = "/hub/user-redirect/"


def _rest_of(request: Request) -> str | None:
    """The path after /hub/user-redirect/, still percent-encoded as sent; None when one of
    its segments is "." or ".." (also encoded: browsers resolve "%2e%2e" too), which would
    climb out of the user's server to some other page."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else quote(request.url.path)
    path = path.split("?", 1)[0]
    rest = path[len(USER_REDIRECT) :] if path.startswith(USER_REDIRECT) else ""
    if any(unquote(segment) in (".", "..") for segment in rest.split("/")):
        return None
    return rest


class Shortcuts:
    def __init__(self, hub: Hub, pages: Pages) -> None:
        self.hub = hub
        self.pages = pages

    async def user_redirect(self, request: Request) -> Response:
        identity = await self.pages.identity_or_login(request)
        if isinstance(identity, Response):
            return identity
        rest = _rest_of(request)
        if rest is None:
            return self.pages.error(request, 404, "There is no such page.", identity)
        query = request.url.query
        target = server_url(identity.user) + rest + (f"?{query}" if query else "")
        return RedirectResponse(target, 302)

    async def spawn_pending(self, request: Request) -> Response:
        identity = await self.pages.identity_or_login(request)
        if isinstance(identity, Response):
            return identity
        try:
            user = validate_username(request.path_params["name"])
        except InvalidInput:
            return self.pages.error(request, 404, "There is no such user.", identity)
        if not identity.may_act_for(user):
            return self.pages.error(request, 403, f"You may not see {user}'s server.", identity)
        status = await self.hub.servers.status(user)
        if status.ready:
            return RedirectResponse(status.url, 302)
        context = {"status": status, "user": user, "next": status.url}
        return self.pages.render(request, "spawn_pending.html", context, identity=identity)
