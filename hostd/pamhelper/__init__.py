"""hostd.pamhelper: the daemon's PAM helper, one short-lived process per login check.

Loaded by: `python -I -m hostd.pamhelper.check` for a login, `python -I -S
.../hostd/pamhelper/check.py` (no site-packages) for an account check; started by
hostd.daemon.login with a minimal environment and killed after its timeout.
As: root (pam_unix reads /etc/shadow).
Never: log or echo the password, outlive its one check, or read anything but its one request
on stdin.
"""

__all__: list[str] = []
