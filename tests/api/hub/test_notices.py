"""The admin's maintenance notices on the hub: the banner and countdown on every page, the
start button while draining, the cull warning on the home page and in the REST API; and the
cache that keeps the daemon from being asked per page."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hostd.api.hub.notices import NOTICES_TTL_S, Notices, notices_context
from hostd.units.errors import SystemdUnavailable
from hostd.units.maintenance import Drain, MaintenanceView
from tests.api.hub.conftest import HubUnderTest
from tests.api.hub.fake import log_in


def draining(at: datetime) -> MaintenanceView:
    return MaintenanceView(
        announcement="Kernel update tonight", drain=Drain(at, "Reboot for a kernel update")
    )


def drain_soon() -> datetime:
    """A drain 42½ minutes from now: taken when the test runs, not when the file is collected
    (a long run reaches a test minutes after collection, and the countdown would say less)."""
    return datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=42, seconds=30)


DRAIN_AT = datetime(2099, 3, 1, 22, 0, tzinfo=UTC)  # far ahead: tests that pass their own "now"
DRAINING = draining(DRAIN_AT)


async def test_every_page_shows_the_announcement_and_the_drain_countdown(
    hub: HubUnderTest,
) -> None:
    drain_at = drain_soon()
    hub.fake.maintenance_view = draining(drain_at)
    async with hub.client() as client:
        login = await client.get("/hub/login")
        assert 'id="announcement" role="status">Kernel update tonight<' in login.text
        await log_in(client, "alice")
        for path in ["/hub/home", "/hub/token", "/hub/logs/alice", "/hub/nowhere"]:
            page = (await client.get(path)).text
            assert "Kernel update tonight" in page, path
            assert "Maintenance: Reboot for a kernel update." in page, path
            assert f"stopped at {drain_at:%Y-%m-%d %H:%M} UTC" in page, path
            countdown = re.search(r'id="drain-countdown" data-at="([^"]+)">([^<]+)<', page)
            assert countdown is not None, path
            assert datetime.fromisoformat(countdown[1]) == drain_at
            assert countdown[2] in ("in 43 minutes", "in 42 minutes"), countdown[2]
            # The countdown's script is a file (CSP script-src 'self'), never inline.
            assert '<script src="/hub/static/notices.js" defer></script>' in page
            assert "<script>" not in page
        script = await client.get("/hub/static/notices.js")
        assert script.status_code == 200 and "drain-countdown" in script.text


async def test_without_notices_pages_have_no_banner_and_no_script(hub: HubUnderTest) -> None:
    async with hub.client() as client:
        await log_in(client, "alice")
        page = (await client.get("/hub/home")).text
    assert 'class="notices"' not in page and "notices.js" not in page
    assert "disabled" not in page


async def test_while_draining_the_start_button_says_why_and_a_start_is_refused(
    hub: HubUnderTest,
) -> None:
    hub.fake.maintenance_view = DRAINING
    async with hub.client() as client:
        await log_in(client, "alice")
        home = (await client.get("/hub/home")).text
        assert 'id="start-refused">Servers cannot start now: Reboot for a kernel update.' in home
        assert 'id="start" disabled title="Reboot for a kernel update"' in home
    # A start sent anyway (an old page, the REST API) is refused with the admin's words.
    token, _ = hub.make_token("alice")
    async with hub.client() as client:
        response = await client.post(
            "/hub/api/users/alice/server", headers={"Authorization": f"token {token}"}
        )
    assert response.status_code == 503, response.text
    assert "Reboot for a kernel update" in response.json()["message"]
    assert "alice" not in hub.fake.sessions


async def test_the_rest_api_has_the_notices_for_any_user(hub: HubUnderTest) -> None:
    hub.fake.maintenance_view = DRAINING
    hub.store.record_login("alice", ok=True)
    token, _ = hub.make_token("alice")
    async with hub.client() as client:
        assert (await client.get("/hub/api/maintenance")).status_code == 403
        response = await client.get(
            "/hub/api/maintenance", headers={"Authorization": f"token {token}"}
        )
    assert response.status_code == 200, response.text
    assert response.json() == DRAINING.to_dict()


async def test_the_cull_warning_shows_on_every_page_of_its_user_and_in_the_server_model(
    hub: HubUnderTest,
) -> None:
    cull_at = datetime(2030, 1, 2, 3, 4, tzinfo=UTC)
    hub.fake.add_session("alice", cull_at=cull_at)
    hub.fake.add_session("bob")
    warning = "Your server will be stopped for\n    inactivity at 2030-01-02 03:04 UTC"
    async with hub.client() as client, hub.client() as bob:
        await log_in(client, "alice")
        await log_in(bob, "bob")
        for page in ("/hub/home", "/hub/token", "/hub/logs/alice"):
            assert warning in (await client.get(page)).text, page
        assert 'id="cull-warning"' not in (await bob.get("/hub/home")).text  # alice's alone
        model = (await client.get("/hub/api/user")).json()
        assert model["servers"][""]["cull_at"] == "2030-01-02T03:04:00+00:00"
        hub.fake.sessions["alice"] = replace(hub.fake.sessions["alice"], cull_at=None)
        model = (await client.get("/hub/api/user")).json()
        assert model["servers"][""]["cull_at"] is None
        # The pages' banner follows within the notices' few seconds (NOTICES_TTL_S).
        deadline = time.monotonic() + NOTICES_TTL_S + 3
        while 'id="cull-warning"' in (await client.get("/hub/home")).text:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)


async def test_notices_are_read_at_most_once_per_ttl_and_kept_when_the_daemon_fails() -> None:
    answers: list[MaintenanceView | Exception] = [
        DRAINING,
        SystemdUnavailable("no answer"),
        MaintenanceView(),
    ]
    asked = 0
    clock = [100.0]

    async def fetch() -> MaintenanceView:
        nonlocal asked
        asked += 1
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    notices = Notices(fetch, ttl_s=5, clock=lambda: clock[0])
    assert notices.latest == MaintenanceView()  # nothing read in the constructor
    assert await notices.refresh() == DRAINING
    clock[0] += 4.9
    assert await notices.refresh() == DRAINING and asked == 1
    clock[0] += 0.2
    assert await notices.refresh() == DRAINING and asked == 2  # failed: the last one kept
    clock[0] += 1
    assert await notices.refresh() == DRAINING and asked == 2  # not asked again at once
    clock[0] += 5
    assert await notices.refresh() == MaintenanceView() and asked == 3


def test_the_context_has_the_countdown_in_words() -> None:
    now = DRAIN_AT - timedelta(hours=1, minutes=5)
    assert notices_context(DRAINING, now) == {
        "announcement": "Kernel update tonight",
        "drain": DRAINING.drain,
        "drain_countdown": "in 1 hour 5 minutes",
    }
    assert notices_context(MaintenanceView(), now)["drain_countdown"] is None
