"""hostd.busworker: the daemon's D-Bus worker, a process of its own that talks to systemd
with pystemd (blocking calls, off the daemon's event loop).

Loaded by: `python -I -m hostd.busworker.worker`, started by hostd.daemon.systemd; it dies with
the daemon (PR_SET_PDEATHSIG).
As: root (systemd's StartTransientUnit, StopUnit, SetUnitProperties need it).
Never: decide anything: it runs the calls the daemon sends on its pipe, one at a time, and
answers; it reads no config and no request from anyone else.
"""

__all__: list[str] = []
