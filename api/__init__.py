"""hostd.api: the daemon's HTTP protocol over its Unix socket, and the unprivileged processes
that use it.

Loaded by: the daemon (only `daemon`, `openapi`, `service`, `wire`: its HTTP face, which knows
no host and is handed its service); the hub (`hub`, `client`, `wire`), JupyterHub
(`spawner`, `jupyterhub_proxy`, `client`, `wire`) and hostctl (`client`).
As: root in the daemon; the hub's system user; JupyterHub's user; any member of the socket's
group.
Never: import the root side (hostd.daemon, hostd.config, hostd.cli, hostd.busworker,
hostd.pamhelper), pystemd or PAM; the client, the wire and the spawner never load a server
framework. Everything privileged is a request on the daemon's socket.

Modules: wire (the contract both ends share: JSON of values and errors, codes, statuses,
limits), service (what the HTTP face is handed), daemon (the HTTP face), openapi (its
document), client (HTTP/1.1 over the socket: client_transport), http1 (the one HTTP/1.1
client connection, answers parsed by llhttp, and its pool: the client's, the hub proxy's and
the hub's WebSocket upgrades'), spawner (HostdSpawner), jupyterhub_proxy (JupyterHub's
configurable-http-proxy, waited for on a slow host), hub (the web hub), lean_imports
(uvicorn's server and pystemd's journal without their packages' __init__), heap (malloc_trim).
"""

__all__: list[str] = []
