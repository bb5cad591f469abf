"""The words the hub's pages use for a server's state: Cockpit's, set in one place."""

from __future__ import annotations

import pytest

from hostd.api.hub.state import STATE_LABELS
from hostd.units.values import SESSION_STATES
from tests.api.hub.conftest import HubUnderTest
from tests.api.hub.fake import log_in


def test_every_state_has_a_label() -> None:
    assert set(STATE_LABELS) == set(SESSION_STATES)
    assert STATE_LABELS["running"] == "Running"
    assert STATE_LABELS["stopped"] == "Not running"
    assert STATE_LABELS["failed"] == "Failed to start"


@pytest.mark.parametrize(
    ("state", "words"),
    [("running", "Running"), ("failed", "Failed to start"), (None, "Not running")],
)
async def test_home_and_admin_say_the_state_in_words(
    hub: HubUnderTest, state: str | None, words: str
) -> None:
    if state is not None:
        hub.fake.add_session("alice", state=state)
    async with hub.client() as client:
        await log_in(client, "alice")
        home = (await client.get("/hub/home")).text
    assert f'id="server-state">Server: <strong>{words}</strong>' in home
    async with hub.client() as client:
        await log_in(client, "carol")
        admin = (await client.get("/hub/admin")).text
    row = admin[admin.index('id="user-alice"') :]
    row = row[: row.index("</tr>")]
    assert f">{words}" in row
