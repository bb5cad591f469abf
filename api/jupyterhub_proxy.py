"""configurable-http-proxy for JupyterHub, given the time it needs to listen on a slow host.

Loaded by: JupyterHub (``c.JupyterHub.proxy_class``, in the config install.sh --jupyterhub
writes), as JupyterHub's user. Never: loads a server framework or anything of the root side.

JupyterHub 5 and 6 start configurable-http-proxy (node) and give it a hard-coded 10 s to listen
(``proxy.py``: ``server.wait_up(10)``). When node takes longer (a small or busy VM, a cold page
cache, a host without hardware virtualisation), JupyterHub exits with "Failed to start proxy"
although node comes up a few seconds later; systemd restarts it, and the first start of a new
install reads as a crash loop. This class waits on for the same process, as long as it runs,
up to ``start_timeout`` in all, then carries on exactly as JupyterHub does once its proxy is up.
"""

from __future__ import annotations

import asyncio
import contextlib

from jupyterhub.objects import Server
from jupyterhub.proxy import ConfigurableHTTPProxy
from tornado.ioloop import PeriodicCallback
from traitlets import Integer

__all__ = ["JUPYTERHUB_WAIT", "PatientConfigurableHTTPProxy"]

# What JupyterHub's own start waits (jupyterhub/proxy.py, ConfigurableHTTPProxy.start).
JUPYTERHUB_WAIT = 10


class PatientConfigurableHTTPProxy(ConfigurableHTTPProxy):  # type: ignore[misc]
    """ConfigurableHTTPProxy whose process may take up to ``start_timeout`` s to listen."""

    start_timeout = Integer(
        120,
        config=True,
        help="Seconds configurable-http-proxy may take to listen on its two ports "
        f"(JupyterHub's own wait is {JUPYTERHUB_WAIT}).",
    )

    async def start(self) -> None:
        started = asyncio.get_running_loop().time()
        try:
            await super().start()
        except TimeoutError:
            # super() left the process running: wait for it, not for a new one.
            if self.proxy_process is None or self.proxy_process.poll() is not None:
                raise
            spent = asyncio.get_running_loop().time() - started
            left = self.start_timeout - spent
            if left <= 0:
                raise
            self.log.warning(
                "configurable-http-proxy (pid %d) does not listen yet after %.0f s; "
                "waiting up to %.0f s more (c.%s.start_timeout)",
                self.proxy_process.pid,
                spent,
                left,
                type(self).__name__,
            )
            await self._wait_listening(left)
            self.log.info(
                "configurable-http-proxy listens after %.0f s",
                asyncio.get_running_loop().time() - started,
            )
            # What JupyterHub's start does once its proxy answers: watch the process.
            self._check_running_callback = PeriodicCallback(
                self.check_running, 1e3 * self.check_running_interval
            )
            self._check_running_callback.start()

    async def _wait_listening(self, timeout: float) -> None:
        """Both of the proxy's ports accept connections; raise if the process exits first."""
        servers = (Server.from_url(self.public_url), Server.from_url(self.api_url))
        listening = asyncio.ensure_future(
            asyncio.gather(*(server.wait_up(timeout) for server in servers))
        )
        exited = asyncio.ensure_future(self._exit_status())
        try:
            done, _ = await asyncio.wait(
                (listening, exited), timeout=timeout + 1, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (listening, exited):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if exited in done:
            raise RuntimeError(f"Proxy failed to start with exit code {exited.result()}")
        if listening not in done or listening.exception() is not None:
            raise TimeoutError(
                f"configurable-http-proxy did not listen within {self.start_timeout} s"
            )

    async def _exit_status(self) -> int:
        # A Popen has nothing to await: poll it, as JupyterHub's own start does.
        while (status := self.proxy_process.poll()) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.5)
        return int(status)
