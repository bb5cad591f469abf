"""Whether an account may still use the hub, asked of the daemon and believed for a while
(api layer; no I/O of its own).

The hub is unprivileged: it cannot read /etc/shadow, so whether an account is locked or expired
is the daemon's answer (GET /v1/accounts/{user}: the account policy and PAM's account
management, without a password), and so is whether it is an admin ([auth] admin_users and
admin_groups are the daemon's config) and its uid. ``Accounts.check`` keeps each answer for
``interval_s`` (at most hostd.api.hub.settings.ACCOUNT_CHECK_MAX_S, 60 s), so a locked account,
a re-created name or a lost admin right takes effect on every cookie and token within that,
without a request to the daemon on every page.

A refusal (locked, expired, unknown, refused by the policy) is kept like an answer. When the
daemon cannot answer (down, PAM did not answer), the request is refused and nothing is kept:
an account the hub cannot vouch for gets nothing, and the next request asks again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

from hostd.units.errors import HostdError, InvalidInput, UnknownUser, UserRefused
from hostd.units.values import AccountView

__all__ = ["AccountLookup", "Accounts"]

log = logging.getLogger(__name__)

_CACHE_MAX: Final = 10_000

# HostdClient.account: the daemon's answer for one name, or a hostd.units.errors class.
AccountLookup = Callable[[str], Awaitable[AccountView]]


class Accounts:
    """The daemon's answer per user name, each believed for ``interval_s`` seconds."""

    def __init__(
        self,
        lookup: AccountLookup,
        *,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self.interval_s = interval_s
        self._clock = clock
        self._answers: dict[str, tuple[AccountView | None, float]] = {}
        # One question per name at a time: a page's hundred requests ask the daemon once.
        self._asking: dict[str, asyncio.Future[AccountView | None]] = {}

    async def check(self, user: str) -> AccountView | None:
        """The account now (uid, admin), or None if it may not use the hub (locked, expired,
        gone, refused), or if the daemon could not say."""
        kept = self._answers.get(user)
        if kept is not None and self._clock() - kept[1] < self.interval_s:
            return kept[0]
        asking = self._asking.get(user)
        if asking is not None:
            return await asyncio.shield(asking)
        future: asyncio.Future[AccountView | None] = asyncio.get_running_loop().create_future()
        self._asking[user] = future
        try:
            answer = await self._ask(user)
            future.set_result(answer)
            return answer
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting on it
            raise
        finally:
            del self._asking[user]

    async def _ask(self, user: str) -> AccountView | None:
        asked_at = self._clock()
        try:
            view = await self._lookup(user)
        except (UserRefused, UnknownUser, InvalidInput) as exc:
            # UserRefused covers AccountDisabled: locked, expired, refused by PAM.
            log.warning(
                "the account of %s may not use the hub: %s (%s)", user, exc.message, exc.code
            )
            self._keep(user, None, asked_at)
            return None
        except HostdError as exc:
            log.error("could not check the account of %s: %s (%s)", user, exc.message, exc.code)
            return None
        self._keep(user, view, asked_at)
        return view

    def _keep(self, user: str, view: AccountView | None, at: float) -> None:
        if len(self._answers) >= _CACHE_MAX:
            self._answers.clear()
        self._answers[user] = (view, at)

    def forget(self, user: str) -> None:
        """Ask again next time (after a login: the daemon has just vouched anew)."""
        self._answers.pop(user, None)
