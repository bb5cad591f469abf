"""Packages loaded without their ``__init__``, for the daemon and the hub (api layer).

Some packages' ``__init__`` imports far more than a long-running hostd process uses, and the
footprint target (issue 17: daemon + D-Bus worker + hub with 100 sessions in 100 MiB of RSS)
counts every module. Measured in a fresh interpreter (README's Benchmarks):

- uvicorn's ``__init__`` imports ``uvicorn.main``: click, the reloaders' and workers'
  supervisors and with them multiprocessing; the daemon and the hub start ``uvicorn.Server``
  from code and use none of it (about 2 MiB of RSS in each);
- pystemd's ``__init__`` imports its whole object layer (systemd1, machine1, lxml for
  introspection): 4.75 MiB in the daemon, which uses ``pystemd.journal`` alone (its log
  handler); the D-Bus worker does the same for ``pystemd.dbuslib`` (hostd.busworker.worker);
- ``ssl`` maps OpenSSL (libcrypto, libssl): 4.3 MiB in the daemon, which never speaks TLS (its
  socket is a Unix socket; sessions are reached over Unix sockets and loopback HTTP), and 4.5
  MiB in a hub that serves plain HTTP (behind a proxy that ends TLS, or on a trusted network).
  uvicorn, anyio, uvloop and prometheus_client import ``ssl`` unconditionally, for types,
  defaults and error codes only: ``without_tls`` gives them a module of inert names instead,
  and the root process keeps OpenSSL's code out of its address space as well.

The console scripts call these before anything imports the packages: a bare package module takes
the package's place, with its ``__path__``, so every submodule imports as before. Anything that
already imported a package (a test run) keeps it whole.
"""

from __future__ import annotations

import importlib.util
import sys
import types

__all__ = ["NO_TLS", "NoTLSError", "uvicorn_server_only", "without_package_init", "without_tls"]

NO_TLS = "this process does not load TLS (hostd.api.lean_imports.without_tls)"


class NoTLSError(RuntimeError):
    """Raised by anything of the stand-in ``ssl`` that would have needed OpenSSL."""


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


_CONSTANTS = {
    "PROTOCOL_TLS_SERVER": 17,  # uvicorn.config's defaults
    "CERT_NONE": 0,
    "SSL_ERROR_WANT_READ": 2,  # uvloop's loop, at its module's init
    "SSL_ERROR_WANT_WRITE": 3,
    "SSL_ERROR_SYSCALL": 5,
}


def _refuse(cls: type, *args: object, **kwargs: object) -> object:
    raise NoTLSError(NO_TLS)


class _NoTLSModule(types.ModuleType):
    def __getattr__(self, name: str) -> type:
        """Every name is a class, so ``isinstance`` and ``except`` work (and find nothing),
        that refuses to be made, so nothing runs without TLS silently."""
        if name.startswith("__"):  # copy, pickle, help() probe dunders: none are here
            raise AttributeError(name)
        base = Exception if name.endswith(("Error", "Exception")) else object
        inert = type(name, (base,), {"__module__": "ssl", "__new__": _refuse})
        setattr(self, name, inert)  # the same class every time: `except` and `is` agree
        return inert


def without_tls() -> bool:
    """``ssl`` without OpenSSL, and hashlib's and hmac's own digests instead of OpenSSL's; False
    (and nothing changed) when any of these modules is loaded already (a test run keeps them
    whole; the testbed's test of the running daemon would see OpenSSL mapped)."""
    if any(name in sys.modules for name in ("ssl", "_ssl", "_hashlib", "hashlib", "hmac")):
        return False
    sys.modules["_hashlib"] = None  # type: ignore[assignment]  # ImportError: built-in digests
    stand_in = _NoTLSModule("ssl", NO_TLS)
    # The numbers importers read at import, with OpenSSL's values; none is used without TLS.
    for name, value in _CONSTANTS.items():
        setattr(stand_in, name, value)
    sys.modules["ssl"] = stand_in
    return True
