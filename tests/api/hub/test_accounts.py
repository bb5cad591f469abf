"""hostd.api.hub.accounts: the daemon's answer about an account, believed at most 60 s."""

from __future__ import annotations

import asyncio

import pytest

from hostd.api.hub.accounts import Accounts
from hostd.api.hub.settings import ACCOUNT_CHECK_MAX_S, HubConfig
from hostd.api.wire import DaemonUnreachable
from hostd.units.errors import AccountDisabled, AccountUnchecked, ConfigError, UnknownUser
from hostd.units.values import AccountView

ALICE = AccountView(user="alice", uid=5000, admin=False)


class Daemon:
    """GET /v1/accounts/{user} as a test wants it: an answer or an error, counted."""

    def __init__(self) -> None:
        self.answer: AccountView | Exception = ALICE
        self.asked: list[str] = []
        self.delay_s = 0.0

    async def __call__(self, user: str) -> AccountView:
        self.asked.append(user)
        await asyncio.sleep(self.delay_s)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_default_and_the_most_hub_toml_allows_is_60_s() -> None:
    assert HubConfig().account_check_interval == ACCOUNT_CHECK_MAX_S == 60.0
    assert HubConfig(account_check_interval=5).account_check_interval == 5.0
    for value in (61, 0, -1, "60", True):
        with pytest.raises(ConfigError, match=r"hub\.account_check_interval"):
            HubConfig(account_check_interval=value)


def test_tokens_live_30_days_unless_hub_toml_says_otherwise() -> None:
    assert HubConfig().token_max_age_s == 30 * 86400
    assert HubConfig(token_max_age_days=1).token_max_age_s == 86400
    with pytest.raises(ConfigError, match=r"hub\.token_max_age_days"):
        HubConfig(token_max_age_days=0)


async def test_an_answer_is_believed_for_the_interval_and_no_longer() -> None:
    daemon, clock = Daemon(), Clock()
    accounts = Accounts(daemon, interval_s=60.0, clock=clock)
    assert await accounts.check("alice") == ALICE
    daemon.answer = AccountDisabled("the account alice is locked")
    clock.now += 59.9
    assert await accounts.check("alice") == ALICE
    clock.now += 0.1  # 60 s after the question
    assert await accounts.check("alice") is None
    assert daemon.asked == ["alice", "alice"]


async def test_a_refusal_is_kept_and_a_login_asks_afresh() -> None:
    daemon, clock = Daemon(), Clock()
    accounts = Accounts(daemon, interval_s=60.0, clock=clock)
    daemon.answer = UnknownUser("no account named 'alice'")
    assert await accounts.check("alice") is None
    assert await accounts.check("alice") is None
    assert daemon.asked == ["alice"]
    daemon.answer = ALICE
    accounts.forget("alice")
    assert await accounts.check("alice") == ALICE


@pytest.mark.parametrize(
    "failure",
    [
        DaemonUnreachable("no socket", socket_path="/run/hostd/hostd.sock"),
        AccountUnchecked("PAM did not answer"),
    ],
)
async def test_when_the_daemon_cannot_say_the_request_is_refused_and_nothing_kept(
    failure: Exception,
) -> None:
    daemon = Daemon()
    accounts = Accounts(daemon, interval_s=60.0, clock=Clock())
    daemon.answer = failure
    assert await accounts.check("alice") is None
    daemon.answer = ALICE
    assert await accounts.check("alice") == ALICE
    assert daemon.asked == ["alice", "alice"]


async def test_many_requests_at_once_ask_the_daemon_once() -> None:
    daemon = Daemon()
    daemon.delay_s = 0.05
    accounts = Accounts(daemon, interval_s=60.0)
    answers = await asyncio.gather(*(accounts.check("alice") for _ in range(50)))
    assert answers == [ALICE] * 50 and daemon.asked == ["alice"]
