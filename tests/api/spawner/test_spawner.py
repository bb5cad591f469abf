"""HostdSpawner against a fake daemon: the real API app on a Unix socket, over a fake service.

The fake builds each start's unit with the real units.build_unit and its ``session_policy``, so
a request the real daemon would refuse (a token in Environment=, a variable outside
allowed_environment) fails here too; the same policy is what its GET /v1/policy answers, which
the spawner checks JupyterHub's sandbox options against.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from datetime import timedelta
from importlib.metadata import entry_points
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, unquote, urlparse

import pytest
import yarl
from jupyterhub import spawner as jupyterhub_spawner
from jupyterhub.objects import Hub, Server
from tornado import web
from traitlets.config import Config

from hostd.api import spawner as spawner_module
from hostd.api.daemon import build_daemon_app
from hostd.api.spawner import (
    DEFAULT_HOSTD_CONFIG,
    HostdSpawner,
    policy_conflicts,
    socket_connect_url,
    spawn_exception,
    split_environment,
)
from hostd.config import DEFAULT_CONFIG_PATH
from hostd.units import SessionPolicy, SessionRequest, UserInfo, build_unit
from hostd.units.choices import ProfileView
from hostd.units.errors import (
    CapacityExceeded,
    InvalidOption,
    PermissionDenied,
    SpawnFailed,
    SystemdUnavailable,
)
from hostd.units.values import Caller, PolicyView, StartOutcome
from tests.api.fake import ROOT, STARTED_AT, FakeSessionService, serving, with_peer

TOKEN = "hub-made-api-token-0123456789"
SpawnException = jupyterhub_spawner.SpawnException


class Daemon(FakeSessionService):
    """The fake service, plus: each start is built into a unit by the real build_unit, may wait
    in "starting" until ``ready`` is set, and may end as a test says (``end_with``)."""

    def reset(self) -> None:
        super().reset()
        self.requests: list[tuple[SessionRequest, str | None, dict[str, str]]] = []
        self.ready: asyncio.Event | None = None
        self.session_policy = SessionPolicy(cmd=("/opt/hostd/bin/hostd-session-exec", "/bin/true"))

    async def start(
        self,
        user: str,
        request: SessionRequest,
        *,
        caller: Caller,
        wait: bool = True,
        command: str | None = None,
        secrets: Mapping[str, str] | None = None,
        profile: str | None = None,
        server: str = "",
    ) -> StartOutcome:
        self.requests.append((request, command, dict(secrets or {})))
        self.profile_asked = profile
        self.server = server
        self._choice(user, profile)  # refused as the daemon refuses (UnknownProfile)
        info = UserInfo(user, 1000, 1000, f"/home/{user}", "/bin/bash")
        build_unit(self.session_policy, info, request, port=20001, base_url=f"/user/{user}/")
        if self.ready is None or user in self.sessions:
            return await super().start(
                user,
                request,
                caller=caller,
                wait=wait,
                command=command,
                secrets=secrets,
                profile=profile,
                server=server,
            )
        self._check("start")
        outcome = await super().start(user, request, caller=caller, wait=False)
        await self.ready.wait()
        self.sessions[user] = replace(outcome.session, state="running")
        return StartOutcome(self.sessions[user], created=True)

    def end_session(self, user: str, **changes: Any) -> None:
        self.sessions[user] = replace(self.sessions[user], url=None, **changes)


@pytest.fixture
async def daemon(socket_path: Path) -> AsyncIterator[Daemon]:
    fake = Daemon()
    app = with_peer(build_daemon_app(fake, first_line_wait_s=0.2), ROOT)
    async with serving(app, socket_path):
        yield fake


@pytest.fixture
def make_spawner(socket_path: Path) -> Callable[..., HostdSpawner]:
    def make(user: str = "alice", config: Config | None = None, **options: Any) -> HostdSpawner:
        options.setdefault("hostd_socket", str(socket_path))
        hub_user = SimpleNamespace(name=user, url=f"/user/{user}/", escaped_name=user, id=7)
        spawner = HostdSpawner(
            user=hub_user,
            hub=Hub(base_url="/hub/"),
            api_token=TOKEN,
            oauth_client_id=f"jupyterhub-user-{user}",
            config=config or Config(),
            **options,
        )
        spawner.server = Server(base_url=f"/user/{user}/")
        return spawner

    return make


async def start_refused(spawner: HostdSpawner) -> Any:
    with pytest.raises(SpawnException) as caught:
        await spawner.start()
    return caught.value


# -- registration and the environment -------------------------------------------------------


def test_hostd_is_a_jupyterhub_spawner_entry_point() -> None:
    (entry,) = entry_points(group="jupyterhub.spawners", name="hostd")
    assert entry.load() is HostdSpawner


def test_the_api_token_goes_in_secrets_and_the_rest_of_jupyterhubs_env_in_environment() -> None:
    env = {
        "JUPYTERHUB_API_TOKEN": "t",
        "JPY_API_TOKEN": "t",
        "JUPYTERHUB_SSL_KEYFILE": "/k",
        "MY_PASSWORD": "p",
        "JUPYTERHUB_USER": "alice",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/alice/",
        "PATH": "/hub/venv/bin",
        "JUPYTERHUB_SINGLEUSER_APP": "jupyter_server.serverapp.ServerApp",
        "MEM_LIMIT": "1",
        "CPU_LIMIT": "1.0",
        "SITE": "x",
    }
    environment, secrets = split_environment(
        env, hub_only=["PATH", "LANG", "JUPYTERHUB_SINGLEUSER_APP"]
    )
    assert secrets == {
        "JUPYTERHUB_API_TOKEN": "t",
        "JPY_API_TOKEN": "t",
        "JUPYTERHUB_SSL_KEYFILE": "/k",
        "MY_PASSWORD": "p",
    }
    assert environment == {
        "JUPYTERHUB_USER": "alice",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/alice/",
        "JUPYTERHUB_SINGLEUSER_APP": "jupyter_server.serverapp.ServerApp",
        "SITE": "x",
    }


async def test_start_sends_limits_command_and_secrets_and_returns_the_url(
    daemon: Daemon, make_spawner: Callable[..., HostdSpawner]
) -> None:
    spawner = make_spawner(mem_limit="2G", cpu_limit=1.0, default_url="/lab")
    url = await spawner.start()
    assert url == "http://127.0.0.1:8901/user/alice/"
    (request, command, secrets) = daemon.requests[0]
    assert command == "singleuser"
    assert secrets == {"JUPYTERHUB_API_TOKEN": TOKEN, "JPY_API_TOKEN": TOKEN}
    assert (request.mem_limit, request.cpu_limit) == (2 * 1024**3, 1.0)
    assert request.default_url == "/lab"
    environment = dict(request.environment)
    assert environment["JUPYTERHUB_USER"] == "alice"
    assert environment["JUPYTERHUB_SERVICE_PREFIX"] == "/user/alice/"
    assert "JUPYTERHUB_SERVICE_URL" in environment  # jupyterhub-singleuser requires it
    assert all(key.startswith("JUPYTERHUB_") for key in environment)
    assert TOKEN not in repr(request)  # the unit's Environment= is built from the request


async def test_a_hub_admins_variable_outside_the_allowlist_is_refused_by_the_daemon(
    daemon: Daemon, make_spawner: Callable[..., HostdSpawner]
) -> None:
    error = await start_refused(make_spawner(environment={"SITE_NAME": "lab"}))
    assert error.reason == "invalid-option"
    assert "SITE_NAME is not allowed (allowed: JUPYTERHUB_*)" in error.message
    daemon.session_policy = replace(
        daemon.session_policy, allowed_environment=("JUPYTERHUB_*", "SITE_*")
    )
    await make_spawner(environment={"SITE_NAME": "lab"}).start()
    assert daemon.requests[-1][0].environment["SITE_NAME"] == "lab"


async def test_an_empty_hostd_command_means_the_sessions_own_cmd(
    daemon: Daemon, make_spawner: Callable[..., HostdSpawner]
) -> None:
    await make_spawner(hostd_command="").start()
    assert daemon.requests[0][1] is None


# -- failures reach JupyterHub as SpawnException, with hostd's reason ------------------------


async def test_a_failed_session_fails_the_start_at_once_with_the_daemons_reason(
    daemon: Daemon, make_spawner: Callable[..., HostdSpawner]
) -> None:
    daemon.fail["start"] = SpawnFailed(
        "the session of alice failed to start: exit status 203 (EXEC: no such program)",
        details={"result": "exit-code", "exit_status": 203, "log": ["execve failed"]},
    )
    spawner = make_spawner()
    started = time.monotonic()
    error = await start_refused(spawner)
    assert time.monotonic() - started < 2
    assert (error.reason, error.status_code) == ("spawn-failed", 500)
    assert "exit status 203 (EXEC" in error.message
    assert error.jupyterhub_message == error.message  # what JupyterHub's pages show
    assert "execve failed" in error.log_message
    assert await spawner.poll() == 0  # nothing of ours to stop


@pytest.mark.parametrize(
    ("error", "reason", "status", "text"),
    [
        (InvalidOption("unknown command 'singleuser' (the admin defined: none)"),
         "invalid-option", 400, "unknown command 'singleuser'"),
        (CapacityExceeded("starting this session would promise too much"),
         "capacity", 503, "promise too much"),
        (PermissionDenied("uid 999 is neither root nor in group 'hostd'"),
         "forbidden", 403, "socket_group"),
    ],
)  # fmt: skip
async def test_daemon_refusals_become_spawn_exceptions(
    daemon: Daemon,
    make_spawner: Callable[..., HostdSpawner],
    error: Exception,
    reason: str,
    status: int,
    text: str,
) -> None:
    daemon.fail["start"] = error
    refused = await start_refused(make_spawner())
    assert (refused.reason, refused.status_code) == (reason, status)
    assert text in refused.message


async def test_an_unreachable_daemon_is_a_clear_failure(
    make_spawner: Callable[..., HostdSpawner], tmp_path: Path
) -> None:
    spawner = make_spawner(hostd_socket=str(tmp_path / "nothing.sock"))
    error = await start_refused(spawner)
    assert (error.reason, error.status_code) == ("daemon-unreachable", 503)
    assert f"cannot connect to hostd at {tmp_path}/nothing.sock" in error.message
    assert await spawner.poll() is None  # unknown is not "ended": hostd may be restarting


SOCKET_ORIGIN = "http+unix://%2Frun%2Fhostd%2Fsessions%2Falice%2Fjupyter.sock"


async def test_on_jupyterhub_5_a_session_on_a_unix_socket_is_stopped_and_refused_saying_what_to_do(
    daemon: Daemon, make_spawner: Callable[..., HostdSpawner], monkeypatch: pytest.MonkeyPatch
) -> None:
    # JupyterHub 5 checks a server with tornado's client (http and https only): the session
    # is not left running for nothing. (The systemd tier proves it with JupyterHub 5.5.4.)
    monkeypatch.setattr(spawner_module, "jupyterhub_version", (5, 5, 4, "", ""))
    daemon.start_origin = SOCKET_ORIGIN
    spawner = make_spawner()
    error = await start_refused(spawner)
    assert error.status_code == 500
    assert "JupyterHub 5.5.4 cannot connect to" in error.message
    assert "listens on {PORT}" in error.message and "singleuser" in error.message
    assert daemon.sessions["alice"].state == "stopped"
    assert await spawner.poll() == 0
    assert spawner.server.connect_url == ""


async def test_on_jupyterhub_6_a_session_on_a_unix_socket_is_handed_over_as_connect_url(
    daemon: Daemon, make_spawner: Callable[..., HostdSpawner]
) -> None:
    daemon.start_origin = SOCKET_ORIGIN
    spawner = make_spawner()
    url = await spawner.start()
    assert url == f"{SOCKET_ORIGIN}/user/alice/"
    assert spawner.server.connect_url == url
    # What User.spawn then does with the URL (jupyterhub/user.py): urlparse lowercases the
    # host and gives no port, so 80. The proxy's target stays the socket's path, no ":80".
    parsed = urlparse(url)
    spawner.server.proto, spawner.server.ip = parsed.scheme, parsed.hostname
    spawner.server.port = parsed.port or 80
    assert spawner.server.host == SOCKET_ORIGIN
    assert spawner.server.url == f"{SOCKET_ORIGIN}/user/alice/"
    assert daemon.sessions["alice"].state == "running"

    # A restarted JupyterHub: a server rebuilt from the database, which has no connect_url.
    restarted = make_spawner()
    restarted.load_state(spawner.get_state())
    assert restarted.server.connect_url == url


@pytest.mark.parametrize(
    "path",
    [
        "/run/hostd/sessions/alice/jupyter.sock",
        "/run/Hostd/sessions/Alice.B/jupyter.sock",  # user names may hold capitals
        "/srv/héllo wörld/sessions/x_y-z/jupyter.sock",
    ],
)
def test_the_connect_url_names_the_socket_after_yarl_and_node_read_it(path: str) -> None:
    url = socket_connect_url(f"http+unix://{quote(path, safe='')}/user/x/")
    # JupyterHub's client: unquote(yarl's host), and yarl lowercases hosts.
    assert unquote(yarl.URL(url).host or "") == path
    # configurable-http-proxy: decodeURIComponent of the WHATWG URL's host, which for a
    # non-special scheme is kept as written: a plain decoding of the netloc.
    assert unquote(urlparse(url).netloc) == path
    assert urlparse(url).path == "/user/x/"


async def test_a_session_jupyterhub_did_not_start_is_refused_and_left_alone(
    daemon: Daemon, make_spawner: Callable[..., HostdSpawner]
) -> None:
    daemon.add_session("alice")
    spawner = make_spawner()
    error = await start_refused(spawner)
    assert (error.reason, error.status_code) == ("conflict", 409)
    assert "hostctl stop alice" in error.message
    assert await spawner.poll() == 0
    await spawner.stop()
    assert daemon.sessions["alice"].state == "running"


def test_on_jupyterhub_5_an_http_error_carries_the_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(jupyterhub_spawner, "SpawnException")
    error = spawn_exception("memory 100% promised", reason="capacity", status_code=503)
    assert type(error) is web.HTTPError
    assert error.status_code == 503
    assert "memory 100% promised" in str(error)
    assert error.jupyterhub_message == "memory 100% promised"  # type: ignore[attr-defined]


# -- options hostd does not take from JupyterHub ------------------------------------------


@pytest.mark.parametrize(
    ("options", "text"),
    [
        ({"cmd": ["jupyter-lab"]}, "cmd/args: the session's command is the admin's"),
        ({"args": ["--debug"]}, "cmd/args"),
        ({"slice": "big.slice"}, "slice: sessions always run in jupyter.slice"),
        ({"dynamic_users": True}, "dynamic_users"),
        ({"mem_guarantee": "1G"}, "mem_guarantee: hostd enforces limits, not guarantees"),
    ],
)
async def test_what_hostd_cannot_do_is_refused_before_asking_it(
    daemon: Daemon,
    make_spawner: Callable[..., HostdSpawner],
    options: dict[str, Any],
    text: str,
) -> None:
    error = await start_refused(make_spawner(**options))
    assert error.reason == "invalid-option"
    assert text in error.message
    assert daemon.requests == []


async def test_a_named_server_is_asked_of_hostd_by_its_name(
    daemon: Daemon, make_spawner: Callable[..., HostdSpawner]
) -> None:
    # JupyterHub's orm record names a server of c.JupyterHub.allow_named_servers.
    spawner = make_spawner(orm_spawner=SimpleNamespace(name="gpu", display_name="gpu", server=None))
    await spawner.start()
    assert daemon.server == "gpu"
    assert spawner.unit == "jupyter-alice:gpu.service"


@pytest.mark.parametrize("name", ["../x", "GPU", "a.slice", "a:b"])
async def test_a_server_name_hostd_does_not_take_is_refused_before_the_daemon(
    daemon: Daemon, make_spawner: Callable[..., HostdSpawner], name: str
) -> None:
    spawner = make_spawner(orm_spawner=SimpleNamespace(name=name, display_name=name, server=None))
    error = await start_refused(spawner)
    assert error.reason == "invalid-server-name"
    assert "invalid server name" in error.message
    assert daemon.requests == []


async def test_a_sandbox_option_the_policy_does_not_give_is_refused_naming_it_and_the_file(
    daemon: Daemon, make_spawner: Callable[..., HostdSpawner]
) -> None:
    daemon.config_file = "/srv/admin/hostd.toml"
    config = Config({"SystemdSpawner": {"isolate_tmp": True, "readonly_paths": ["/srv"]}})
    error = await start_refused(make_spawner(config=config))
    assert error.reason == "invalid-option"
    assert "isolate_tmp = true (hostd has false)" in error.message
    assert "readonly_paths = ['/srv'] (hostd has [])" in error.message
    assert "/srv/admin/hostd.toml [session]" in error.message
    assert daemon.requests == []
    daemon.config_file = None  # the daemon runs on its defaults: the usual file is named
    error = await start_refused(make_spawner(config=config))
    assert f"{DEFAULT_HOSTD_CONFIG} [session]" in error.message


def test_the_config_file_named_by_default_is_the_daemons_default() -> None:
    assert str(DEFAULT_CONFIG_PATH) == DEFAULT_HOSTD_CONFIG


async def test_sandbox_options_that_agree_with_the_policy_start(
    daemon: Daemon, make_spawner: Callable[..., HostdSpawner]
) -> None:
    daemon.session_policy = replace(
        daemon.session_policy,
        isolate_tmp=True,
        isolate_devices=True,
        disable_user_sudo=True,
        user_workingdir="/home/{USERNAME}",
        readonly_paths=("/", "/srv"),
        readwrite_paths=("/home/{USERNAME}",),
        unit_extra_properties={"TasksMax": 512},
    )
    config = Config(
        {
            "SystemdSpawner": {
                "isolate_tmp": True,
                "isolate_devices": True,
                "disable_user_sudo": True,
                "user_workingdir": "/home/{USERNAME}",
                "readonly_paths": ["/srv", "/"],  # order does not matter
                "readwrite_paths": ["/home/{USERNAME}"],
                "unit_extra_properties": {"TasksMax": "512"},  # systemdspawner's strings
            }
        }
    )
    await make_spawner(config=config).start()
    assert len(daemon.requests) == 1
    assert daemon.calls.count(("policy",)) == 1


async def test_the_policy_is_asked_only_when_a_sandbox_option_is_set(
    daemon: Daemon, make_spawner: Callable[..., HostdSpawner]
) -> None:
    await make_spawner().start()
    assert ("policy",) not in daemon.calls


async def test_an_unanswered_policy_or_a_bad_option_is_a_clear_refusal(
    daemon: Daemon, make_spawner: Callable[..., HostdSpawner], tmp_path: Path
) -> None:
    nowhere = str(tmp_path / "nothing.sock")
    error = await start_refused(make_spawner(isolate_tmp=True, hostd_socket=nowhere))
    assert (error.reason, error.status_code) == ("daemon-unreachable", 500)
    assert "cannot check isolate_tmp against hostd's policy: cannot connect" in error.message
    daemon.fail["policy"] = SystemdUnavailable("no answer")
    error = await start_refused(make_spawner(isolate_tmp=True))
    assert error.reason == "systemd-unavailable"
    assert error.message == "cannot check isolate_tmp against hostd's policy: no answer"
    del daemon.fail["policy"]
    error = await start_refused(make_spawner(readonly_paths=["srv"]))
    assert error.message.startswith("JupyterHub's config: readonly_paths")
    assert daemon.requests == []


def test_policy_conflicts_compare_what_is_set_and_nothing_else() -> None:
    policy = PolicyView.of(
        SessionPolicy(cmd=("/bin/true",), isolate_tmp=True, default_shell="/bin/zsh")
    )
    assert policy_conflicts({}, policy) == []
    assert policy_conflicts({"isolate_tmp": True}, policy) == []
    assert policy_conflicts({"default_shell": "/bin/bash"}, policy) == [
        "default_shell = '/bin/bash' (hostd has '/bin/zsh')"
    ]
    assert policy_conflicts({"unit_extra_properties": {"TasksMax": 5}}, policy) == [
        "unit_extra_properties = {'TasksMax': 5} (hostd has {})"
    ]


# -- poll, stop, state ---------------------------------------------------------------------


async def test_poll_reports_each_state_of_the_session(
    daemon: Daemon, make_spawner: Callable[..., HostdSpawner]
) -> None:
    spawner = make_spawner()
    assert await spawner.poll() == 0  # never started
    daemon.ready = asyncio.Event()
    start = asyncio.create_task(spawner.start())
    await asyncio.sleep(0.1)
    assert await spawner.poll() is None  # starting
    daemon.ready.set()
    await start
    assert await spawner.poll() is None  # running
    daemon.end_session("alice", state="failed", result="exit-code", exit_status=3)
    assert await spawner.poll() == 3
    daemon.end_session("alice", state="failed", result="signal", exit_status=None)
    assert await spawner.poll() == 1
    daemon.end_session("alice", state="stopped", result="success")
    assert await spawner.poll() == 0
    del daemon.sessions["alice"]
    assert await spawner.poll() == 0


async def test_state_survives_a_hub_restart_and_stop_is_idempotent(
    daemon: Daemon, make_spawner: Callable[..., HostdSpawner]
) -> None:
    first = make_spawner()
    url = await first.start()
    state = first.get_state()
    assert state["hostd"]["unit"] == "jupyter-alice.service"
    restarted = make_spawner()
    assert await restarted.poll() == 0  # before load_state: nothing of ours
    restarted.load_state(state)
    assert restarted.get_state() == state
    assert await restarted.poll() is None
    assert restarted.session_url == url
    await restarted.stop()
    await restarted.stop()
    assert [call[0] for call in daemon.calls].count("stop") == 1
    assert await restarted.poll() == 0
    restarted.clear_state()
    assert "hostd" not in restarted.get_state()
    await restarted.stop()  # nothing left to stop: no call
    assert [call[0] for call in daemon.calls].count("stop") == 1


async def test_a_session_restarted_outside_jupyterhub_is_not_ours(
    daemon: Daemon, make_spawner: Callable[..., HostdSpawner]
) -> None:
    spawner = make_spawner()
    await spawner.start()
    later = STARTED_AT + timedelta(hours=1)
    daemon.sessions["alice"] = replace(daemon.sessions["alice"], started_at=later)
    assert await spawner.poll() == 0
    await spawner.stop()
    assert daemon.sessions["alice"].state == "running"


def test_load_state_of_another_spawner_or_of_nothing_leaves_it_unstarted(
    make_spawner: Callable[..., HostdSpawner],
) -> None:
    spawner = make_spawner()
    spawner.load_state({})
    spawner.load_state({"unit_name": "jupyter-alice-singleuser"})  # systemdspawner's state
    assert spawner.unit is None
    spawner.load_state({"hostd": {"unit": "jupyter-alice.service", "started_at": "garbage"}})
    assert (spawner.unit, spawner.started_at) == ("jupyter-alice.service", None)


# -- progress --------------------------------------------------------------------------------


async def test_progress_shows_the_daemons_steps_until_start_returns(
    daemon: Daemon, make_spawner: Callable[..., HostdSpawner]
) -> None:
    spawner = make_spawner(mem_limit="2G", cpu_limit=1.0)
    daemon.ready = asyncio.Event()
    events: list[dict[str, Any]] = []

    async def follow() -> None:
        async with contextlib.aclosing(spawner.progress()) as progress:
            async for event in progress:
                events.append(event)
                if "systemd started" in event["message"]:
                    assert daemon.ready is not None
                    daemon.ready.set()

    watcher = asyncio.create_task(follow())
    await asyncio.sleep(0.05)
    await spawner.start()
    await asyncio.wait_for(watcher, timeout=5)
    messages = [event["message"] for event in events]
    assert messages[0] == (
        "Asking hostd to start jupyter-alice.service with the admin's command 'singleuser'"
    )
    assert messages[1] == (
        "systemd started jupyter-alice.service (memory 2.0G, 1 CPU); "
        "waiting for the server to answer on port 8901"
    )
    assert messages[-1].startswith("jupyter-alice.service answers at http://127.0.0.1:8901/")
    progress = [event["progress"] for event in events]
    assert progress == sorted(progress) and len(events) >= 3


async def test_progress_of_a_failed_start_ends_with_it(
    daemon: Daemon, make_spawner: Callable[..., HostdSpawner]
) -> None:
    daemon.fail["start"] = SpawnFailed("the session of alice failed to start: boom")
    spawner = make_spawner()
    events: list[dict[str, Any]] = []

    async def follow() -> None:
        async for event in spawner.progress():
            events.append(event)

    watcher = asyncio.create_task(follow())
    await asyncio.sleep(0.05)
    await start_refused(spawner)
    await asyncio.wait_for(watcher, timeout=5)
    assert [event["progress"] for event in events] == [10]


# -- [[profile_list]]: options_form and user_options -------------------------------------------

SMALL = ProfileView(
    slug="small", display_name="Small <2 GB>", mem_limit_bytes=2 * 2**30, cpu_limit=1.0
)
LARGE = ProfileView(
    slug="large",
    display_name="Large",
    description="For big data",
    default=True,
    mem_limit_bytes=16 * 2**30,
    cpu_limit=4.0,
    gpus=1,
)


async def test_the_options_form_offers_the_choices_the_daemon_gives_the_user(
    daemon: Daemon, make_spawner: Callable[..., HostdSpawner]
) -> None:
    daemon.choices["alice"] = [SMALL, LARGE]
    form = await make_spawner().get_options_form()
    assert form.startswith('<fieldset id="hostd-profiles"><legend>Choose your server</legend>')
    assert '<input type="radio" name="profile" id="profile-item-small" value="small">' in form
    assert 'value="large" checked>' in form
    assert "<strong>Small &lt;2 GB&gt;</strong>" in form  # escaped
    assert "16.0G memory · 4 CPU · 1 GPU" in form and "For big data" in form
    # Without choices: no form, and JupyterHub spawns at once as before.
    assert await make_spawner("bob").get_options_form() == ""


@pytest.mark.parametrize(
    ("user_options", "sent"),
    [
        ({"profile": "small"}, "small"),  # the REST API's body
        ({"profile": ["small"]}, "small"),  # JupyterHub's form data, passed through
        ({}, None),  # the default choice
        ({"profile": ""}, None),
    ],
)
async def test_user_options_carry_the_slug_to_the_daemon(
    daemon: Daemon,
    make_spawner: Callable[..., HostdSpawner],
    user_options: dict[str, Any],
    sent: str | None,
) -> None:
    daemon.choices["alice"] = [SMALL, LARGE]
    spawner = make_spawner()
    spawner.user_options = user_options
    await spawner.start()
    assert daemon.profile_asked == sent


async def test_a_hidden_or_malformed_profile_is_a_clear_refusal(
    daemon: Daemon, make_spawner: Callable[..., HostdSpawner]
) -> None:
    daemon.choices["alice"] = [SMALL]
    spawner = make_spawner()
    spawner.user_options = {"profile": "large"}
    error = await start_refused(spawner)
    assert (error.reason, error.status_code) == ("unknown-profile", 400)
    assert error.message == "no profile large to choose (the choices: small)"
    spawner.user_options = {"profile": 3}
    error = await start_refused(spawner)
    assert error.reason == "invalid-option" and "profile" in error.message


async def test_with_choices_the_choice_decides_the_limits_not_the_config(
    daemon: Daemon, make_spawner: Callable[..., HostdSpawner]
) -> None:
    daemon.choices["alice"] = [SMALL, LARGE]
    spawner = make_spawner(mem_limit="8G", cpu_limit=2.0)
    await spawner.start()  # the default choice
    request = daemon.requests[-1][0]
    assert (request.mem_limit, request.cpu_limit) == (None, None)
    assert daemon.sessions["alice"].profile_slug == "large"
    # Without choices, the config's limits go as before.
    await make_spawner("bob", mem_limit="8G").start()
    assert daemon.requests[-1][0].mem_limit == 8 * 2**30
