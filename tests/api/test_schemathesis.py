"""Generated requests against the daemon's API (schemathesis over api/openapi.py's document).

Every operation gets requests made from the document, valid and not: no answer may be a server
error, and every answer must match the document (status, content type, body schema). The fake
service holds sessions for alice and bob, so generated requests meet both states; the caller is
root, who may call everything, and a member, who is refused what is not his.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.core.result import Ok

from hostd.api.daemon import build_daemon_app
from hostd.units.values import PeerCredentials
from tests.api.fake import MEMBER, ROOT, FakeSessionService, with_peer

MINIMUM_REQUESTS = 1000
EXAMPLES_PER_OPERATION = 80
PEERS = {"root": ROOT, "member": MEMBER}

fake = FakeSessionService()
_app = build_daemon_app(fake, first_line_wait_s=0.05)
peer: list[PeerCredentials] = [ROOT]
sent: Counter[str] = Counter()


async def _as_current_peer(scope, receive, send):  # type: ignore[no-untyped-def]
    await with_peer(_app, peer[0])(scope, receive, send)


# The document says what is well formed; what the admin configured says more (the named
# commands, the environment allowlist, the ceilings on limits), and a well-formed request that
# breaks it is answered 422 with a stable code. 401/403/404/409/429 are the states of the world.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429"]
            }
        }
    }
)
schema = schemathesis.openapi.from_asgi("/openapi.json", _as_current_peer, config=CONFIG)
OPERATIONS = [result.ok().label for result in schema.get_all_operations() if isinstance(result, Ok)]


def _fresh_state() -> None:
    fake.reset()
    fake.add_session("alice")
    fake.add_session("bob", state="failed")


@pytest.mark.parametrize("peer_name", list(PEERS))
@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_generated_requests_get_no_server_error_and_match_the_document(
    case: schemathesis.Case[Any], peer_name: str
) -> None:
    peer[0] = PEERS[peer_name]
    _fresh_state()
    case.call_and_validate()  # every check schemathesis has
    sent[f"{case.operation.label} as {peer_name}"] += 1


def test_at_least_a_thousand_requests_reached_every_operation() -> None:
    if not sent:
        pytest.skip("counts what the generated tests above sent: run the whole module")
    expected = {f"{label} as {name}" for label in OPERATIONS for name in PEERS}
    assert set(sent) == expected
    print(f"{sum(sent.values())} generated requests: {dict(sent)}")
    assert sum(sent.values()) >= MINIMUM_REQUESTS, sent
