# The session environment's Jupyter server config: {sys.prefix}/etc/jupyter/ of the admin's
# session environment (/opt/hostd/session), read by every user's JupyterLab.
#
# The hub adds the session's token to every request it forwards (Authorization: token ...), so
# the browser needs no token. JupyterLab would still write it into every page it serves (its
# page config), where the user, or an admin with admin_access, could read it: blank it there,
# as JupyterLab itself does when it runs under JupyterHub.
c = get_config()  # noqa: F821 - provided by traitlets when it loads this file


def _no_token_in_pages(handler, page_config):  # type: ignore[no-untyped-def]
    page_config = {**page_config, "token": ""}
    # JupyterLab's own hub extension (@jupyterlab/hub-extension, built in: no extension to
    # install) adds File > "Hub Control Panel" (hubHost + hubPrefix + "home", a new tab) and
    # "Log Out" (<this server>/logout, which the hub's proxy sends to /hub/logout) once the
    # page config names a hub prefix. Under JupyterHub (jupyterhub-singleuser) it is set
    # already; under hostd-hub the server lives at /user/<name>/ and the hub at /hub/, on
    # this origin (with subdomain_host, the user's origin sends /hub/... to the hub's). As
    # under JupyterHub, the server's own "Log Out" and "Shut Down" go (quitButton): the hub
    # stops servers, and a second "Log Out" that only forgets the server's cookie misleads.
    parts = handler.base_url.strip("/").split("/")
    if "hubPrefix" not in page_config and len(parts) == 2 and parts[0] == "user":
        page_config.update(hubPrefix="/hub/", hubHost="", hubUser=parts[1], quitButton=False)
    return page_config


c.ServerApp.tornado_settings = {"page_config_hook": _no_token_in_pages}

# Kernels talk to the server over ZeroMQ. On "tcp" (jupyter_client's default) each kernel gets
# five loopback ports that the server picks by binding port 0 and letting go, and the kernel
# binds later: on the loopback every session shares, kernels starting at once in different
# sessions picked the same port and died ("Address already in use"; 20 kernels at once,
# tests/api/hub/systemd/test_load.py). "ipc" puts them on Unix sockets beside the kernel's
# connection file, in the session's private runtime directory (JUPYTER_RUNTIME_DIR,
# /run/jupyter-<user>, set by hostd): nothing to collide with, nothing on the loopback.
c.KernelManager.transport = "ipc"
