# The session environment's Jupyter server config: {sys.prefix}/etc/jupyter/ of the admin's
# session environment (/opt/hostd/session), read by every user's JupyterLab.
#
# The hub adds the session's token to every request it forwards (Authorization: token ...), so
# the browser needs no token. JupyterLab would still write it into every page it serves (its
# page config), where the user, or an admin with admin_access, could read it: blank it there,
# as JupyterLab itself does when it runs under JupyterHub.
c = get_config()  # noqa: F821 - provided by traitlets when it loads this file


def _no_token_in_pages(handler, page_config):  # type: ignore[no-untyped-def]
    return {**page_config, "token": ""}


c.ServerApp.tornado_settings = {"page_config_hook": _no_token_in_pages}

# Kernels talk to the server over ZeroMQ. On "tcp" (jupyter_client's default) each kernel gets
# five loopback ports that the server picks by binding port 0 and letting go, and the kernel
# binds later: on the loopback every session shares, kernels starting at once in different
# sessions picked the same port and died ("Address already in use"; 20 kernels at once,
# tests/api/hub/systemd/test_load.py). "ipc" puts them on Unix sockets beside the kernel's
# connection file, in the session's private runtime directory (JUPYTER_RUNTIME_DIR,
# /run/jupyter-<user>, set by hostd): nothing to collide with, nothing on the loopback.
c.KernelManager.transport = "ipc"
