"""hostd: one Linux machine serving notebooks to many people, one systemd unit per user.

Loaded by: every process of the project, as the parent of its packages; it holds no code, so
importing any of them loads nothing else.
As: whoever runs that process (root, the hub's user, JupyterHub's user, a session's user).
Never: import anything here. Each package below says who loads it:

    hostd.cli        the `hostd` and `hostctl` commands            root (hostctl: a member too)
    hostd.daemon     the root daemon: sessions, store, login       root
    hostd.busworker  the daemon's D-Bus worker process (pystemd)   root
    hostd.pamhelper  the daemon's PAM helper process               root
    hostd.config     hostd.toml                                    root
    hostd.api        the daemon's HTTP protocol and its unprivileged users (hub, client, spawner)
    hostd.units      what a session's unit is; errors; values      any (pure)
    hostd.cgroups    reading a unit's cgroup                       any (pure)

Arrows point down this table; `lint-imports` (pyproject.toml's contracts) keeps them so.
"""

__all__: list[str] = []
