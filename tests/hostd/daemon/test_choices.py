"""[[profile_list]] choices at start, over FakeSystemd and a real store (no systemd): the
daemon resolves the slug, enforces who may see it and caps the request by it, whoever asks.

Sessions run as the account "daemon" (uid 1, in group "daemon" alone on every Debian).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hostd.daemon.sessions import SessionManager
from hostd.units import SessionRequest
from hostd.units.choices import ProfileView
from hostd.units.errors import InvalidOption, UnknownProfile
from hostd.units.values import Caller
from tests.hostd.daemon.fake_systemd import FakeSystemd
from tests.hostd.daemon.parts import GIB, ROOT, make_manager

# The hub: acts for others, never privileged (it may not exceed the admin's caps).
HUB = Caller(uid=999, name="hostd-hub", privileged=False, acts_for_others=True)
CHOICES = """\
max_mem_limit = "8G"
max_cpu_limit = 4
[commands]
other = ["/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1", "{PORT}"]
[[profile_list]]
slug = "small"
display_name = "Small"
mem_limit = "512M"
cpu_limit = 0.25
[[profile_list]]
slug = "large"
display_name = "Large"
default = true
mem_limit = "4G"
cpu_limit = 2
command = "other"
[[profile_list]]
slug = "staff"
display_name = "Staff only"
mem_limit = "8G"
groups = ["staff-not-daemon"]
"""


@pytest.fixture
async def manager(tmp_path: Path) -> tuple[SessionManager, FakeSystemd]:
    made, fake = make_manager(tmp_path, CHOICES)
    fake.serve = True
    yield made, fake  # type: ignore[misc]
    await made.close()


def _limits(fake: FakeSystemd) -> tuple[int, int]:
    (spec,) = fake.started
    props = {p.name: p.value for p in spec.properties}
    return props["MemoryMax"], props["CPUQuotaPerSecUSec"]  # type: ignore[return-value]


async def test_the_chosen_profile_sets_the_limits_and_is_shown(
    manager: tuple[SessionManager, FakeSystemd],
) -> None:
    made, fake = manager
    outcome = await made.start("daemon", SessionRequest(), caller=HUB, profile="small")
    assert _limits(fake) == (512 * 2**20, 250_000)
    assert outcome.session.profile_slug == "small"
    assert (await made.get("daemon")).profile_slug == "small"
    record = made.store.last_for("daemon")
    assert record is not None and record.profile_slug == "small"
    (spec,) = fake.started
    assert "http.server" in str(spec.properties)
    stopped = await made.stop("daemon", caller=HUB)
    assert stopped.profile_slug == "small"  # from the record once it ended


async def test_no_slug_gets_the_default_choice_with_its_command(
    manager: tuple[SessionManager, FakeSystemd],
) -> None:
    made, fake = manager
    outcome = await made.start("daemon", SessionRequest(), caller=HUB)
    assert outcome.session.profile_slug == "large"
    assert _limits(fake) == (4 * GIB, 2_000_000)
    (spec,) = fake.started
    exec_start = next(p for p in spec.properties if p.name == "ExecStart")
    assert "--bind" in str(exec_start.value)  # [commands] other, the choice's


async def test_attack_a_hidden_slug_is_refused_as_an_unknown_one(
    manager: tuple[SessionManager, FakeSystemd],
) -> None:
    made, fake = manager
    for slug in ("staff", "no-such"):
        with pytest.raises(UnknownProfile) as caught:
            await made.start("daemon", SessionRequest(), caller=HUB, profile=slug)
        assert caught.value.message == (f"no profile {slug} to choose (the choices: small, large)")
    assert fake.started == [] and made.store.last_for("daemon") is None


async def test_attack_a_slug_with_larger_limits_is_refused(
    manager: tuple[SessionManager, FakeSystemd],
) -> None:
    made, fake = manager
    for request in (SessionRequest(mem_limit=2 * GIB), SessionRequest(cpu_limit=1.0)):
        with pytest.raises(InvalidOption, match="is above the allowed"):
            await made.start("daemon", request, caller=HUB, profile="small")
    assert fake.started == []
    # Less than the choice is allowed: a choice caps, it does not force.
    await made.start("daemon", SessionRequest(mem_limit=256 * 2**20), caller=HUB, profile="small")
    assert _limits(fake)[0] == 256 * 2**20


async def test_root_may_still_exceed_a_choice_as_it_may_exceed_any_cap(
    manager: tuple[SessionManager, FakeSystemd],
) -> None:
    made, fake = manager
    await made.start("daemon", SessionRequest(mem_limit=2 * GIB), caller=ROOT, profile="small")
    assert _limits(fake)[0] == 2 * GIB


async def test_the_choices_a_user_may_take_with_their_limits(
    manager: tuple[SessionManager, FakeSystemd],
) -> None:
    made, _ = manager
    assert await made.profiles("daemon") == [
        ProfileView(
            slug="small",
            display_name="Small",
            mem_limit_bytes=512 * 2**20,
            cpu_limit=0.25,
        ),
        ProfileView(
            slug="large", display_name="Large", default=True, mem_limit_bytes=4 * GIB, cpu_limit=2
        ),
    ]


async def test_without_choices_nothing_changes(tmp_path: Path) -> None:
    made, fake = make_manager(tmp_path)
    fake.serve = True
    try:
        assert await made.profiles("daemon") == []
        outcome = await made.start("daemon", SessionRequest(), caller=HUB)
        assert outcome.session.profile_slug is None
        assert _limits(fake) == (GIB, 500_000)
        await made.stop("daemon", caller=HUB)
        with pytest.raises(UnknownProfile, match="the choices: none"):
            await made.start("daemon", SessionRequest(), caller=HUB, profile="small")
    finally:
        await made.close()


async def test_metrics_carry_the_profile_as_a_bounded_info_series(
    manager: tuple[SessionManager, FakeSystemd],
) -> None:
    made, _ = manager
    assert b"hostd_session_profile" not in (await made.metrics())[0]  # no choice: no series
    await made.start("daemon", SessionRequest(), caller=HUB, profile="small")
    text = (await made.metrics())[0].decode()
    assert 'hostd_session_profile{profile="small",user="daemon"} 1.0' in text


async def test_the_choice_survives_a_daemon_restart(
    manager: tuple[SessionManager, FakeSystemd],
) -> None:
    made, _ = manager
    await made.start("daemon", SessionRequest(), caller=HUB, profile="small")
    made.table["daemon"].profile_slug = None  # as a new daemon's table starts
    await made.reattach()
    assert (await made.get("daemon")).profile_slug == "small"


def test_hostctl_status_shows_a_profile_column_only_when_a_session_has_one() -> None:
    from hostd.cli.hostctl import TABLE_COLUMNS, session_table
    from hostd.units.values import SessionView

    plain = SessionView(user="alice", unit="jupyter-alice.service", state="running")
    chosen = SessionView(
        user="bob", unit="jupyter-bob.service", state="running", profile_slug="small"
    )
    assert session_table([plain]).splitlines()[0].split() == " ".join(TABLE_COLUMNS).split()
    header, alice, bob = session_table([plain, chosen]).splitlines()
    assert header.endswith("PROFILE") and alice.endswith("-") and bob.endswith("small")
