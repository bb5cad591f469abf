"""hostd.api.hub: the web hub: PAM login (through the daemon), a user database, pages, a JSON
API, and the /user/<name>/ proxy to each user's JupyterLab.

Loaded by: `hostd-hub` (hostd.api.hub.cli, serving through hostd.api.hub.server).
As: its own system user `hostd-hub`, in group `hostd`; never root (the CLI refuses root).
Never: read /etc/shadow or check a password itself, start or stop a unit itself, or import the
root side: everything privileged (password checks, starts and stops) is a request on the
daemon's socket.

``build_hub_app`` (app) makes the ASGI app from a ``HubConfig`` (settings). Modules: settings
(hub.toml), security (signatures, CSRF, next, same-site), db (the user database), identity (who is
asking), accounts (whether an account may still use the hub: the daemon's answer, kept up to
60 s), servers (starts and stops, progress), proxy (/user/...), upstream (its HTTP client) and
wsrelay (its WebSockets, as bytes), routes and peer (where each server is, and that a
connection really reached it), forms (bounded input), pages and api (what
people and scripts see), state (the shared object), app (the wiring), server (start-up I/O and
uvicorn), cli (the command).

Nothing is imported here, so that ``hostd-hub --check-config`` loads no web stack.
"""

__all__: list[str] = []
