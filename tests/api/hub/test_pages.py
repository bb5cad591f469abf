"""The hub's pages: who sees what, start and stop through forms, CSRF on every form, progress
without JavaScript, usage and logs, tokens, and the headers every page carries."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from hostd.units.errors import CapacityExceeded
from hostd.units.values import LogLine, UsageView
from tests.api.hub.conftest import HubUnderTest
from tests.api.hub.fake import log_in, xsrf_of

PAGES = ["/hub/home", "/hub/admin", "/hub/token", "/hub/logs/alice", "/hub/logs/alice/follow"]
FORMS = ["/hub/spawn/alice", "/hub/stop/alice", "/hub/token", "/hub/logout"]


async def test_every_page_sends_a_stranger_to_the_login_with_next(hub: HubUnderTest) -> None:
    async with hub.client() as client:
        for path in PAGES:
            response = await client.get(path)
            assert response.status_code == 302, path
            assert response.headers["location"].startswith("/hub/login?next=%2Fhub%2F"), path
        for path in ["/", "/hub", "/hub/"]:
            response = await client.get(path)
            assert (response.status_code, response.headers["location"]) == (302, "/hub/home")


async def test_every_page_answers_its_user(hub: HubUnderTest) -> None:
    hub.fake.add_session("alice")
    hub.fake.follow_forever = False
    async with hub.client() as client:
        await log_in(client, "alice")
        for path in ["/hub/home", "/hub/token", "/hub/logs/alice", "/hub/logout"]:
            response = await client.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-type"].startswith("text/html"), path
        follow = await client.get("/hub/logs/alice/follow")
        assert follow.status_code == 200
        assert follow.headers["content-type"] == "text/plain; charset=utf-8"
        assert "alice line 2" in follow.text
        assert (await client.get("/hub/admin")).status_code == 403
        assert (await client.get("/hub/logs/bob")).status_code == 403
        assert (await client.get("/hub/logs/bob/follow")).status_code == 403
        assert (await client.get("/hub/logs/no%20one")).status_code == 404
        assert (await client.get("/hub/nowhere")).status_code == 404


async def test_pages_carry_security_headers_and_are_not_cached(hub: HubUnderTest) -> None:
    async with hub.client() as client:
        page = await client.get("/hub/login")
        css = await client.get("/hub/static/hub.css")
        js = await client.get("/hub/static/hub.js")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    assert css.status_code == js.status_code == 200
    assert "cache-control" not in css.headers or css.headers["cache-control"] != "no-store"


async def test_home_shows_state_usage_logs_and_the_lab_link(hub: HubUnderTest) -> None:
    hub.fake.add_session("alice", lines=30)
    hub.fake.usages["alice"] = UsageView(
        user="alice",
        memory_bytes=512 * 1024**2,
        memory_limit_bytes=2 * 1024**3,
        cpu_percent=37.0,
        cpu_limit=1.5,
        tasks=12,
    )
    async with hub.client() as client:
        await log_in(client, "alice")
        home = (await client.get("/hub/home")).text
    assert "<strong>Running</strong>" in home
    assert 'href="/user/alice/lab"' in home and "Open JupyterLab" in home
    assert "512.0M" in home and "2.0G" in home
    # CPU in CPUs against the limit (issue 16: never "of 150 %"), far from it: no warning.
    assert "0.37 of 1.5 CPUs (25 %)" in home and "150 %" not in home
    assert 'class="level' not in home
    assert "alice line 29" in home and "alice line 9" not in home  # the last 20 lines
    assert 'href="/hub/logs/alice"' in home
    assert 'id="stop"' in home and 'id="start"' not in home


async def test_home_and_admin_say_when_the_kernel_killed_in_a_session(hub: HubUnderTest) -> None:
    hub.fake.add_session("alice")
    hub.fake.add_session("dave")
    hub.fake.usages["alice"] = UsageView(user="alice", memory_bytes=1024, oom_kills=2)
    async with hub.client() as client:
        await log_in(client, "alice")
        home = (await client.get("/hub/home")).text
    assert '<dd class="error" id="usage-oom">kernel killed: out of memory (2 processes)' in home
    async with hub.client() as client:
        await log_in(client, "carol")
        page = (await client.get("/hub/admin")).text
    alice_row = page[page.index('id="user-alice"') : page.index('id="user-carol"')]
    assert "kernel killed: out of memory (2 processes)" in alice_row
    assert "kernel killed" not in page[page.index('id="user-dave"') :]


async def test_start_from_the_form_shows_progress_then_the_running_server(
    hub: HubUnderTest,
) -> None:
    hub.fake.start_delay_s = 2.0
    async with hub.client() as client:
        await log_in(client, "alice")
        home = await client.get("/hub/home")
        assert 'id="start"' in home.text and "<strong>Not running</strong>" in home.text
        started = await client.post("/hub/spawn/alice", data={"_xsrf": xsrf_of(home.text)})
        assert (started.status_code, started.headers["location"]) == (303, "/hub/home")
        pending = (await client.get("/hub/home")).text
        assert "<strong>Starting</strong>" in pending
        assert 'data-progress-url="/hub/api/users/alice/server/progress"' in pending
        # Without JavaScript the page refreshes itself until the server runs.
        assert '<noscript><meta http-equiv="refresh" content="3"></noscript>' in pending
        assert '<script src="/hub/static/hub.js" defer></script>' in pending
        await asyncio.sleep(2.5)
        ready = (await client.get("/hub/home")).text
    assert "<strong>Running</strong>" in ready and "Open JupyterLab" in ready


async def test_home_with_next_goes_there_once_the_server_runs(hub: HubUnderTest) -> None:
    hub.fake.add_session("alice")
    async with hub.client() as client:
        await log_in(client, "alice")
        response = await client.get("/hub/home", params={"next": "/user/alice/lab"})
        evil = await client.get("/hub/home", params={"next": "//evil.example"})
    assert (response.status_code, response.headers["location"]) == (302, "/user/alice/lab")
    assert evil.status_code == 200


async def test_a_refused_start_is_shown_on_the_page(hub: HubUnderTest) -> None:
    hub.fake.fail["start"] = CapacityExceeded("the machine is full", retry_after_s=30)
    async with hub.client() as client:
        await log_in(client, "alice")
        home = await client.get("/hub/home")
        await client.post("/hub/spawn/alice", data={"_xsrf": xsrf_of(home.text)})
        page = (await client.get("/hub/home")).text
    assert "the machine is full" in page


async def test_stop_from_the_form(hub: HubUnderTest) -> None:
    hub.fake.add_session("alice")
    async with hub.client() as client:
        await log_in(client, "alice")
        home = await client.get("/hub/home")
        stopped = await client.post("/hub/stop/alice", data={"_xsrf": xsrf_of(home.text)})
        page = (await client.get("/hub/home")).text
    assert stopped.status_code == 303
    assert hub.fake.sessions["alice"].state == "stopped"
    assert "<strong>Not running</strong>" in page


async def test_every_form_refuses_no_token_another_sessions_token_and_other_sites(
    hub: HubUnderTest,
) -> None:
    hub.fake.add_session("alice")
    async with hub.client() as client, hub.client() as other:
        await log_in(client, "alice")
        await log_in(other, "alice")  # the same user, another browser: another session
        mine = xsrf_of((await client.get("/hub/home")).text)
        theirs = xsrf_of((await other.get("/hub/home")).text)
        assert mine != theirs
        for path in FORMS:
            for data, headers in [
                ({}, {}),
                ({"_xsrf": ""}, {}),
                ({"_xsrf": theirs}, {}),
                ({"_xsrf": mine}, {"origin": "http://evil.example"}),
                ({"_xsrf": mine}, {"sec-fetch-site": "cross-site"}),
            ]:
                response = await client.post(path, data=data, headers=headers)
                assert response.status_code == 403, (path, data, headers)
        assert (await client.get("/hub/home")).status_code == 200  # still logged in
    assert not any(call[0] in ("stop", "start") for call in hub.fake.calls)
    assert hub.store.tokens("alice") == []


async def test_forms_for_someone_elses_server_are_refused(hub: HubUnderTest) -> None:
    hub.fake.add_session("bob")
    async with hub.client() as client:
        await log_in(client, "alice")
        xsrf = xsrf_of((await client.get("/hub/home")).text)
        stop = await client.post("/hub/stop/bob", data={"_xsrf": xsrf})
        start = await client.post("/hub/spawn/carol", data={"_xsrf": xsrf})
    assert stop.status_code == start.status_code == 403
    assert hub.fake.sessions["bob"].state == "running"


async def test_the_admin_page_lists_users_sessions_usage_and_acts(hub: HubUnderTest) -> None:
    async with hub.client() as alice:
        await log_in(alice, "alice")
    hub.fake.add_session("alice")
    hub.fake.add_session("dave")  # started elsewhere (hostctl), never logged in here
    async with hub.client() as client:
        await log_in(client, "carol")
        page = (await client.get("/hub/admin")).text
        for name in ("alice", "carol", "dave"):
            assert f'id="user-{name}"' in page
        assert "256.0M / 2.0G" in page  # the fake's usage against the limit
        xsrf = xsrf_of(page)
        stopped = await client.post("/hub/stop/dave", data={"_xsrf": xsrf, "next": "/hub/admin"})
        assert (stopped.status_code, stopped.headers["location"]) == (303, "/hub/admin")
        started = await client.post("/hub/spawn/bob", data={"_xsrf": xsrf})
        assert started.headers["location"] == "/hub/admin"
        logs = await client.get("/hub/logs/alice")
    assert hub.fake.sessions["dave"].state == "stopped"
    assert logs.status_code == 200 and "alice line 2" in logs.text


async def test_the_admin_page_shows_each_sessions_gpus(hub: HubUnderTest) -> None:
    hub.fake.add_session("alice", gpus=(0, 2))
    hub.fake.add_session("dave")
    async with hub.client() as client:
        await log_in(client, "carol")
        page = (await client.get("/hub/admin")).text
    alice_row = page[page.index('id="user-alice"') : page.index('id="user-carol"')]
    assert '<small class="gpus">GPU 0, 2</small>' in alice_row
    assert 'class="gpus"' not in page[page.index('id="user-carol"') :]


async def test_the_token_page_makes_shows_once_and_revokes(hub: HubUnderTest) -> None:
    async with hub.client() as client:
        await log_in(client, "alice")
        page = await client.get("/hub/token")
        made = await client.post("/hub/token", data={"_xsrf": xsrf_of(page.text), "note": "ci"})
        assert 'id="new-token"' in made.text
        listed = (await client.get("/hub/token")).text
        assert 'id="new-token"' not in listed and "ci" in listed
        [row] = hub.store.tokens("alice")
        revoked = await client.post(f"/hub/token/{row.id}/delete", data={"_xsrf": xsrf_of(listed)})
    assert revoked.status_code == 303
    assert hub.store.tokens("alice") == []


async def test_an_api_token_opens_no_page(hub: HubUnderTest) -> None:
    token, _ = hub.make_token("alice")
    hub.store.record_login("alice", ok=True)
    async with hub.client(headers={"Authorization": f"token {token}"}) as client:
        assert (await client.get("/hub/home")).status_code == 302


async def test_a_daemon_that_fails_is_a_503_page(hub: HubUnderTest) -> None:
    async with hub.client() as client:
        await log_in(client, "carol")
        hub.fake.fail["list"] = RuntimeError("boom")
        response = await client.get("/hub/admin")
    assert response.status_code == 503 and "could not do that" in response.text


async def test_meters_warn_near_the_limit_in_colour_and_words(hub: HubUnderTest) -> None:
    """Issue 16: "meters stay green at 86 %". 86 % of the memory limit is a warning, 96 % of
    the CPU limit a danger, on the home page and in the admin's table; the words say it too."""
    hub.fake.add_session("alice")
    hub.fake.usages["alice"] = UsageView(
        user="alice",
        memory_bytes=int(0.86 * 2 * 1024**3),
        memory_limit_bytes=2 * 1024**3,
        cpu_percent=96.0,
        cpu_limit=1.0,
    )
    async with hub.client() as client:
        await log_in(client, "alice")
        home = (await client.get("/hub/home")).text
    memory = home[home.index('id="usage-memory"') : home.index("<dt>CPU</dt>")]
    cpu = home[home.index('id="usage-cpu"') : home.index("</dl>")]
    assert 'class="meter-warning"' in memory and "near the limit" in memory
    assert 'low="1717986918.4"' in memory and 'high="2040109465.6"' in memory  # its colours
    assert 'class="meter-danger"' in cpu and "at the limit" in cpu
    assert "0.96 of 1 CPU (96 %)" in cpu and "of 100 %" not in home
    async with hub.client() as client:
        await log_in(client, "carol")
        admin = (await client.get("/hub/admin")).text
    row = admin[
        admin.index('id="user-alice"') : admin.index("</tr>", admin.index('id="user-alice"'))
    ]
    assert 'class="meter-warning"' in row and 'class="meter-danger"' in row
    assert "near the limit" in row and "at the limit" in row


async def test_the_logs_page_filters_by_priority_text_and_since(hub: HubUnderTest) -> None:
    hub.fake.add_session("alice")
    now = datetime.now(UTC)
    hub.fake.journal["alice"] = [
        LogLine(
            "1", now - timedelta(hours=3), "[E 2026-12-06 08:00:00.000 ServerApp] old failure", 3
        ),
        LogLine(
            "2",
            now - timedelta(minutes=5),
            "[I 2026-12-06 11:00:00.000 ServerApp] Kernel started",
            6,
        ),
        LogLine("3", now - timedelta(minutes=1), "kernel died", 3),
    ]
    async with hub.client() as client:
        await log_in(client, "alice")
        everything = (await client.get("/hub/logs/alice")).text
        errors = (await client.get("/hub/logs/alice?priority=3")).text
        recent_errors = (await client.get("/hub/logs/alice?priority=3&since=1h")).text
        kernel = (await client.get("/hub/logs/alice?grep=KERNEL")).text
        nothing = (await client.get("/hub/logs/alice?grep=zz")).text
    # One timestamp per line: the journal's; Jupyter's own date is gone, its level stays.
    assert everything.count('class="log-line"') == 3
    assert "[I ServerApp] Kernel started" in everything and "2026-12-06 11:00:00" not in everything
    for name in ('name="priority"', 'name="grep"', 'name="since"'):
        assert name in everything  # the filters, as a form
    assert 'id="follow"' in everything and 'data-url="/hub/logs/alice/follow"' in everything
    assert errors.count('class="log-line"') == 2 and "Kernel started" not in errors
    assert '<option value="3" selected>' in errors
    assert recent_errors.count('class="log-line"') == 1 and "kernel died" in recent_errors
    assert kernel.count('class="log-line"') == 2 and "old failure" not in kernel
    assert 'data-url="/hub/logs/alice/follow?grep=KERNEL"' in kernel
    assert 'class="log-line"' not in nothing and "No log lines match these filters" in nothing


async def test_follow_applies_the_filters_and_drops_jupyters_timestamp(hub: HubUnderTest) -> None:
    hub.fake.add_session("alice")
    hub.fake.follow_forever = False
    now = datetime.now(UTC)
    hub.fake.journal["alice"] = [
        LogLine("1", now, "[I 2026-12-06 11:00:00.000 ServerApp] Kernel started", 6),
        LogLine("2", now, "kernel died", 3),
    ]
    async with hub.client() as client:
        await log_in(client, "alice")
        errors = (await client.get("/hub/logs/alice/follow?priority=3&since=1h")).text
        both = (await client.get("/hub/logs/alice/follow")).text
    assert errors.splitlines() == [f"{now:%Y-%m-%d %H:%M:%S} kernel died"]
    assert f"{now:%Y-%m-%d %H:%M:%S} [I ServerApp] Kernel started" in both.splitlines()


async def test_every_page_names_the_favicon_and_it_is_served(hub: HubUnderTest) -> None:
    """Issue 16: every page logged a 404 for a missing favicon."""
    async with hub.client() as client:
        login = (await client.get("/hub/login")).text
        icon = await client.get("/hub/static/favicon.svg")
        legacy = await client.get("/favicon.ico")
    assert '<link rel="icon" href="/hub/static/favicon.svg" type="image/svg+xml">' in login
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
    assert icon.text.startswith("<svg")
    assert (legacy.status_code, legacy.headers["location"]) == (301, "/hub/static/favicon.svg")


async def test_a_start_from_home_opens_jupyterlab_by_itself(hub: HubUnderTest) -> None:
    """Issue 16: "one more click to open JupyterLab". The home page's start form carries the
    Lab as next; while starting, the labelled progress bar goes there when ready (hub.js);
    once running, the hub sends the browser there itself."""
    hub.fake.start_delay_s = 2.0
    async with hub.client() as client:
        await log_in(client, "alice")
        home = (await client.get("/hub/home")).text
        assert '<input type="hidden" name="next" value="/user/alice/lab">' in home
        assert 'data-busy="Starting…"' in home  # hub.js: the button says so at once
        started = await client.post(
            "/hub/spawn/alice", data={"_xsrf": xsrf_of(home), "next": "/user/alice/lab"}
        )
        target = started.headers["location"]
        assert target == "/hub/home?next=%2Fuser%2Falice%2Flab"
        pending = (await client.get(target)).text
        await asyncio.sleep(2.5)
        ready = await client.get(target)
    assert 'data-next="/user/alice/lab"' in pending
    assert 'aria-labelledby="progress-label"' in pending and 'id="progress-events"' in pending
    assert (ready.status_code, ready.headers["location"]) == (302, "/user/alice/lab")
