"""The daemon's parts wired as in hostd serve, over FakeSystemd and a real store in tmp_path."""

from __future__ import annotations

from pathlib import Path

from hostd.config import Config, parse_config
from hostd.daemon.login import AccountPamCheck, PamVerdict
from hostd.daemon.sessions import SessionManager
from hostd.daemon.store import Store
from hostd.units.values import Caller
from tests.hostd.daemon.fake_systemd import FakeSystemd

__all__ = ["GIB", "ROOT", "account_usable", "make_config", "make_manager"]

GIB = 2**30
ROOT = Caller(uid=0, name="root", privileged=True)


def make_config(tmp_path: Path, more: str = "") -> Config:
    """A config whose sessions run as system accounts (min_uid 1: "daemon" is uid 1 on every
    Debian), with state and runtime directories in tmp_path."""
    return parse_config(
        f'[daemon]\nstate_dir = "{tmp_path}/state"\nruntime_dir = "{tmp_path}/run"\n'
        "min_uid = 1\nstart_timeout = 2\n"
        '[session]\ncmd = ["/usr/bin/python3", "-m", "http.server", "{PORT}"]\n'
        'mem_limit = "1G"\ncpu_limit = 0.5\n' + more
    )


async def account_usable(service: str, user: str) -> PamVerdict:
    """PAM's account check over FakeSystemd: every account is usable (their sessions run as
    system accounts, which /etc/pam.d has no say on here); the systemd tier runs real PAM."""
    return PamVerdict(ok=True, reason="usable (tests over FakeSystemd)")


def make_manager(
    tmp_path: Path,
    more: str = "",
    *,
    memory_total: int = 8 * GIB,
    account_check: AccountPamCheck = account_usable,
) -> tuple[SessionManager, FakeSystemd]:
    fake = FakeSystemd()
    config = make_config(tmp_path, more)
    config.daemon.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(config.daemon.state_dir / "hostd.sqlite")
    manager = SessionManager(
        config,
        fake,
        store,
        memory_total=memory_total,
        probe=fake.probe,
        account_check=account_check,
    )
    return manager, fake
