"""uvicorn's server without its command line, for the daemon and the hub (api layer).

uvicorn's package ``__init__`` imports ``uvicorn.main``: click, the reloaders' and workers'
supervisors and with them multiprocessing, pickle and configparser. hostd's daemon and hub start
``uvicorn.Server`` from code and never use any of it; measured in a fresh interpreter (issue 17,
README's Benchmarks), importing uvicorn whole costs 5.8 MiB of RSS and the server alone 2.8, in
each of the two processes. ``server_only()``, called by the console scripts before anything
imports uvicorn, puts a bare package module in its place (as the D-Bus worker does for pystemd),
with the two names hostd uses, ``Config`` and ``Server``; every submodule imports as before.
Anything that already imported uvicorn (a test run) keeps the whole package.
"""

from __future__ import annotations

import importlib.util
import sys
import types

__all__ = ["server_only"]


def server_only() -> None:
    """Load uvicorn's Config and Server without uvicorn.main; a no-op once uvicorn is loaded."""
    if "uvicorn" in sys.modules:
        return
    spec = importlib.util.find_spec("uvicorn")
    if spec is None or spec.submodule_search_locations is None:
        return  # not installed: the import that follows says so
    package = types.ModuleType("uvicorn")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    package.__file__ = spec.origin
    sys.modules["uvicorn"] = package
    try:
        from uvicorn._version import __version__
        from uvicorn.config import Config
        from uvicorn.server import Server
    except BaseException:
        del sys.modules["uvicorn"]  # the next import tries the whole package and says why
        raise
    # uvicorn.lifespan.off and .on do `from uvicorn import Config`.
    package.__version__ = __version__  # type: ignore[attr-defined]
    package.Config = Config  # type: ignore[attr-defined]
    package.Server = Server  # type: ignore[attr-defined]
