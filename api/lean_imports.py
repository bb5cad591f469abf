"""Packages loaded without their ``__init__``, for the daemon and the hub (api layer).

Some packages' ``__init__`` imports far more than a long-running hostd process uses, and the
footprint target (issue 17: daemon + D-Bus worker + hub with 100 sessions in 100 MiB of RSS)
counts every module. Measured in a fresh interpreter (README's Benchmarks):

- uvicorn's ``__init__`` imports ``uvicorn.main``: click, the reloaders' and workers'
  supervisors and with them multiprocessing; the daemon and the hub start ``uvicorn.Server``
  from code and use none of it (about 2 MiB of RSS in each);
- pystemd's ``__init__`` imports its whole object layer (systemd1, machine1, lxml for
  introspection): 4.75 MiB in the daemon, which uses ``pystemd.journal`` alone (its log
  handler); the D-Bus worker does the same for ``pystemd.dbuslib`` (hostd.busworker.worker).

The console scripts call these before anything imports the packages: a bare package module takes
the package's place, with its ``__path__``, so every submodule imports as before. Anything that
already imported a package (a test run) keeps it whole.
"""

from __future__ import annotations

import importlib.util
import sys
import types

__all__ = ["uvicorn_server_only", "without_package_init"]


def without_package_init(name: str) -> types.ModuleType | None:
    """An empty module in place of package ``name``, its submodules importable; None when the
    package is loaded already or not installed (the import that follows says so)."""
    if name in sys.modules:
        return None
    spec = importlib.util.find_spec(name)
    if spec is None or spec.submodule_search_locations is None:
        return None
    package = types.ModuleType(name)
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    package.__file__ = spec.origin
    sys.modules[name] = package
    return package


def uvicorn_server_only() -> None:
    """uvicorn with Config and Server, without uvicorn.main; a no-op once uvicorn is loaded."""
    package = without_package_init("uvicorn")
    if package is None:
        return
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
