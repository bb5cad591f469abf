# /etc/jupyterhub/jupyterhub_config.py: JupyterHub's configuration, written once by hostd's
# packaging/install.sh --jupyterhub and never overwritten after: it is yours. Apply a change
# with: systemctl restart jupyterhub  (running sessions keep running).
#
# Sessions are hostd's systemd units (jupyter-<user>.service: systemctl status, journalctl -u).
# Their policy, limits, sandbox and command, is /etc/hostd/hostd.toml ([session], [commands]).
# A c.SystemdSpawner.* line here must agree with it, or a start is refused naming the option;
# hostctl import jupyterhub_config.py writes them into hostd.toml (README, JupyterHub).
c = get_config()  # noqa: F821 (JupyterHub defines it)

c.JupyterHub.spawner_class = "hostd"  # hostd.api.spawner.HostdSpawner
c.HostdSpawner.hostd_command = "singleuser"  # [commands] singleuser in /etc/hostd/hostd.toml

# Logins: this machine's accounts and passwords, through PAM, with the stack hostd-hub uses
# (/etc/pam.d/hostd: common-auth, common-account). JupyterHub's user is in group shadow for
# pam_unix. No PAM session is opened: the session is hostd's unit.
c.JupyterHub.authenticator_class = "pam"
c.PAMAuthenticator.service = "hostd"
c.PAMAuthenticator.open_sessions = False
# Everyone who can log in may ask; hostd decides who gets a session ([daemon] min_uid,
# allowed_groups, allowed_users in /etc/hostd/hostd.toml).
c.Authenticator.allow_all = True
c.Authenticator.admin_users = set()  # e.g. {"alice"}

# Where JupyterHub (its proxy) listens.
# @TLS_NOTE@
c.JupyterHub.bind_url = "@BIND_URL@"
# @TLS_LINES@
# JupyterHub's state: its database, cookie secret and the proxy's pid file, JupyterHub's own.
c.JupyterHub.db_url = "sqlite:////var/lib/jupyterhub/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "/var/lib/jupyterhub/jupyterhub_cookie_secret"
c.ConfigurableHTTPProxy.pid_file = "/var/lib/jupyterhub/jupyterhub-proxy.pid"
c.ConfigurableHTTPProxy.command = ["/opt/hostd/jupyterhub/bin/configurable-http-proxy"]
# JupyterHub gives its proxy (node) a hard-coded 10 s to listen, and exits when a slow or busy
# host takes longer; this one waits for the same process up to start_timeout seconds.
c.JupyterHub.proxy_class = "hostd.api.jupyterhub_proxy.PatientConfigurableHTTPProxy"
c.PatientConfigurableHTTPProxy.start_timeout = 120
# Restarting JupyterHub keeps the servers: they are hostd's units, found again at start.
c.JupyterHub.cleanup_servers = False
