"""hostd.cli: the admin's commands: `hostd` (serve, check-config) and `hostctl` (status, start,
stop, logs, verify, check-config, config, reload).

Loaded by: those commands.
As: root (`hostd serve`, `hostctl verify`); `hostctl`'s session commands also as a member of
the socket's group, acting through the daemon's socket. `hostctl config` and `reload` write
/etc/hostd/*.toml and restart the services, as root.
Never: import the hub's app (hub.toml's rules, hostd.api.hub.settings, only lazily); act on
sessions except through the daemon's socket; `hostd serve` hands over to hostd.daemon, which
does the host's work.
"""

__all__: list[str] = []
