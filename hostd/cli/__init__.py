"""hostd.cli: the admin's commands: `hostd` (serve, check-config) and `hostctl` (status, start,
stop, logs, verify, check-config, config, reload, import, export).

Loaded by: those commands.
As: root (`hostd serve`, `hostctl verify`); `hostctl`'s session commands also as a member of
the socket's group, acting through the daemon's socket. `hostctl config`, `reload` and
`import` write /etc/hostd/*.toml (and restart the services), as root; `import` never runs the
file it reads.
Never: import the hub's app (hub.toml's rules, hostd.api.hub.settings, only lazily); act on
sessions except through the daemon's socket; `hostd serve` hands over to hostd.daemon, which
does the host's work.
"""

__all__: list[str] = []
