"""GPUs (issue 15) in the namespace testbed: cgroup v1, where DeviceAllow= is the devices
controller's devices.allow. The scenarios, with their stand-in nodes, are gpu_scenarios'."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.hostd.daemon.gpu_scenarios import (
    a_gpu_is_held_until_stop_and_after_a_restart,
    each_opens_its_own_and_is_refused_the_others,
)
from tests.hostd.daemon.systemd.conftest import Daemon

pytestmark = pytest.mark.systemd


def test_each_session_opens_its_own_gpu_and_is_refused_anothers(
    daemon: Callable[..., Daemon], make_user: Callable[..., str]
) -> None:
    each_opens_its_own_and_is_refused_the_others(daemon, make_user)


def test_no_free_gpu_is_429_until_a_stop_also_after_a_daemon_restart(
    daemon: Callable[..., Daemon], make_user: Callable[..., str]
) -> None:
    a_gpu_is_held_until_stop_and_after_a_restart(daemon, make_user)
