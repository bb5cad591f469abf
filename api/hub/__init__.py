"""The hub: PAM login (through the daemon), a user database, pages, a JSON API, and the
/user/<name>/ proxy to each user's JupyterLab (api layer: unprivileged, never root).

The hub holds no privilege: it runs as its own system user in group ``hostd`` and does
everything privileged (password checks, starting and stopping sessions) through the daemon's
socket. ``api.hub.app.build_hub_app`` makes the ASGI app from an ``api.hub.config.HubConfig``;
``hostd-hub`` (hostd.cli.hub, serving through api.hub.server) runs it.

Modules: config (hub.toml), security (signatures, CSRF, next, same-site), db (the user
database), auth (who is asking), servers (starts and stops, progress), proxy (/user/...),
routes and peer (where each server is, and that a connection really reached it), forms
(bounded input), pages and api (what people and scripts see), state (the shared object),
app (the wiring), server (start-up I/O and uvicorn).

Nothing is imported here, so that ``hostd-hub --check-config`` loads no web stack.
"""
