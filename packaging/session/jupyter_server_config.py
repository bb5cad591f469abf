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
