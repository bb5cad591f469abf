"""hostd.daemon: the root daemon, `hostd serve`: one transient systemd unit per user, the
session history, password checks for the hub, usage and metrics, behind the HTTP face of
hostd.api.daemon on /run/hostd/hostd.sock.

Loaded by: the daemon's process (hostd.service), and by nothing unprivileged.
As: root.
Never: load pystemd's D-Bus or PAM into this process (they run in hostd.busworker and
hostd.pamhelper, so a hang or a crash there never blocks the event loop); act for a caller the
API did not authorise; put a secret in a unit's Environment= or argv.
"""

__all__: list[str] = []
