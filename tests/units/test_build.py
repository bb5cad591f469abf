"""units.build: whole transient units, compared as whole property lists."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hostd.units import (
    Property,
    SessionPolicy,
    SessionRequest,
    UnitSpec,
    UserInfo,
    build_unit,
    listens_on_socket,
    parse_size,
)
from hostd.units.convert import AF_INET, AF_INET6, MS_REC
from hostd.units.environ import looks_secret
from hostd.units.errors import InvalidName, InvalidOption, InvalidPath, UserRefused
from tests.units.dbus_types import conforms

FAST = settings(database=None, max_examples=300)
ALICE = UserInfo("alice", 1001, 1001, "/home/alice", "/bin/bash")
SINGLEUSER = "/opt/jupyterhub/bin/jupyterhub-singleuser"
# IPAddressDeny=169.254.169.254, the default: the cloud metadata service.
METADATA = [(AF_INET, bytes([169, 254, 169, 254]), 32)]
CMD = (SINGLEUSER, "--port={PORT}", "--ServerApp.base_url={BASE_URL}")

# The configuration of Anaconda's SystemdSpawner guide (seed 002), option for option.
SEED_002 = SessionPolicy(
    cmd=CMD,
    default_shell="/bin/bash",
    mem_limit=parse_size("2G"),
    cpu_limit=1.0,
    isolate_tmp=True,
    isolate_devices=True,
    disable_user_sudo=True,
    unit_extra_properties={"RuntimeDirectoryPreserve": "no"},
    user_workingdir="/shared/users/{USERNAME}",
    readonly_paths=("/opt/shared-data",),
    readwrite_paths=("/tmp", "/shared/notebook-outputs"),
)


def build(policy: SessionPolicy, request: SessionRequest | None = None, **kw: Any) -> UnitSpec:
    kw = {"port": 50001, "base_url": "/user/alice/", **kw}
    return build_unit(policy, kw.pop("user", ALICE), request or SessionRequest(), **kw)


def assert_dbus_types(spec: UnitSpec) -> None:
    for prop in spec.properties:
        assert conforms(prop.signature, prop.value), prop
    names = [prop.name for prop in spec.properties]
    assert len(names) == len(set(names))


def test_golden_seed_002() -> None:
    spec = build(
        SEED_002,
        SessionRequest(
            environment={"JUPYTERHUB_USER": "alice", "JUPYTERHUB_SERVICE_PREFIX": "/user/alice/"}
        ),
        credentials={"jupyterhub-api-token": "/run/hostd/credentials/alice/api-token"},
    )
    assert spec.name == "jupyter-alice.service"
    assert spec.properties == (
        Property("Description", "s", "JupyterLab for alice"),
        Property(
            "ExecStart",
            "a(sasb)",
            [
                (
                    SINGLEUSER,
                    [SINGLEUSER, "--port=50001", "--ServerApp.base_url=/user/alice/"],
                    False,
                )
            ],
        ),
        Property("Type", "s", "exec"),
        Property("User", "s", "alice"),
        Property("WorkingDirectory", "s", "/shared/users/alice"),
        Property(
            "Environment",
            "as",
            [
                "CPU_LIMIT=1.0",
                "JUPYTERHUB_SERVICE_PREFIX=/user/alice/",
                "JUPYTERHUB_USER=alice",
                "JUPYTER_RUNTIME_DIR=/run/jupyter-alice",
                "MEM_LIMIT=2147483648",
                "SHELL=/bin/bash",
            ],
        ),
        Property("Slice", "s", "jupyter.slice"),
        Property("RuntimeDirectory", "as", ["jupyter-alice"]),
        Property("RuntimeDirectoryMode", "u", 0o700),
        Property("CollectMode", "s", "inactive-or-failed"),
        Property("SyslogIdentifier", "s", "jupyter-alice"),
        Property("LogExtraFields", "aay", [b"HOSTD_USER=alice"]),
        Property("MemoryAccounting", "b", True),
        Property("CPUAccounting", "b", True),
        Property("TasksAccounting", "b", True),
        Property("TimeoutStopUSec", "t", 10_000_000),
        Property("KillMode", "s", "control-group"),
        Property("OOMPolicy", "s", "continue"),
        Property(
            "LoadCredential",
            "a(ss)",
            [("jupyterhub-api-token", "/run/hostd/credentials/alice/api-token")],
        ),
        Property("MemoryMax", "t", 2147483648),
        Property("MemorySwapMax", "t", 0),
        Property("CPUQuotaPerSecUSec", "t", 1_000_000),
        Property("PrivateTmp", "b", True),
        Property("TemporaryFileSystem", "a(ss)", [("/dev/shm", "rw,nosuid,nodev,mode=1777")]),
        Property("PrivateDevices", "b", True),
        Property("NoNewPrivileges", "b", True),
        Property("RestrictSUIDSGID", "b", True),
        Property("ReadOnlyPaths", "as", ["/opt/shared-data"]),
        Property("ReadWritePaths", "as", ["/tmp", "/shared/notebook-outputs"]),
        Property("IPAddressDeny", "a(iayu)", METADATA),
        Property("RuntimeDirectoryPreserve", "s", "no"),
    )
    assert_dbus_types(spec)


def test_golden_minimal() -> None:
    bob = UserInfo("bob", 1002, 100, "/home/bob", "/bin/sh")
    spec = build(
        SessionPolicy(cmd=("/usr/local/bin/jupyterhub-singleuser",)),
        user=bob,
        port=8888,
        base_url="/user/bob/",
    )
    assert spec == UnitSpec(
        "jupyter-bob.service",
        (
            Property("Description", "s", "JupyterLab for bob"),
            Property(
                "ExecStart",
                "a(sasb)",
                [
                    (
                        "/usr/local/bin/jupyterhub-singleuser",
                        ["/usr/local/bin/jupyterhub-singleuser"],
                        False,
                    )
                ],
            ),
            Property("Type", "s", "exec"),
            Property("User", "s", "bob"),
            Property("WorkingDirectory", "s", "/home/bob"),
            Property(
                "Environment", "as", ["JUPYTER_RUNTIME_DIR=/run/jupyter-bob", "SHELL=/bin/bash"]
            ),
            Property("Slice", "s", "jupyter.slice"),
            Property("RuntimeDirectory", "as", ["jupyter-bob"]),
            Property("RuntimeDirectoryMode", "u", 0o700),
            Property("CollectMode", "s", "inactive-or-failed"),
            Property("SyslogIdentifier", "s", "jupyter-bob"),
            Property("LogExtraFields", "aay", [b"HOSTD_USER=bob"]),
            Property("MemoryAccounting", "b", True),
            Property("CPUAccounting", "b", True),
            Property("TasksAccounting", "b", True),
            Property("TimeoutStopUSec", "t", 10_000_000),
            Property("KillMode", "s", "control-group"),
            Property("OOMPolicy", "s", "continue"),
            Property("IPAddressDeny", "a(iayu)", METADATA),
        ),
    )
    assert_dbus_types(spec)


def test_golden_locked_down() -> None:
    """Read-only everywhere but the user's directory; admin extras replace, extend, append."""
    policy = SessionPolicy(
        cmd=CMD,
        mem_limit=parse_size("1G"),
        max_mem_limit=parse_size("4G"),
        cpu_limit=0.5,
        max_cpu_limit=2.0,
        disable_user_sudo=True,
        user_workingdir="/shared/users/{USERNAME}",
        readonly_paths=("/",),
        readwrite_paths=("/shared/users/{USERNAME}",),
        shared_paths=("/srv/datasets",),
        environment={"LANG": "C.UTF-8"},
        stop_timeout_usec=5_000_000,
        unit_extra_properties={
            "TasksMax": 512,
            "ProtectSystem": "strict",
            "KillMode": "mixed",
            "TimeoutStopSec": "30s",
            "ReadWritePaths": ["/scratch", "/shared/users"],
            "BindReadOnlyPaths": "/srv/datasets /srv/models",
            "NoNewPrivileges": "yes",
        },
    )
    spec = build(
        policy,
        SessionRequest(mem_limit=parse_size("3G"), cpu_limit=2, default_url="/lab"),
        user=UserInfo("mary-jane", 1003, 1003, "/home/mary-jane", "/bin/bash"),
        base_url="/user/mary-jane/",
    )
    assert spec.name == "jupyter-mary-jane.service"
    assert spec.as_dict() == {
        "Description": "JupyterLab for mary-jane",
        "ExecStart": [
            (
                SINGLEUSER,
                [SINGLEUSER, "--port=50001", "--ServerApp.base_url=/user/mary-jane/"],
                False,
            )
        ],
        "Type": "exec",
        "User": "mary-jane",
        "WorkingDirectory": "/shared/users/mary-jane",
        "Environment": [
            "CPU_LIMIT=2.0",
            "JUPYTERHUB_DEFAULT_URL=/lab",
            "JUPYTER_RUNTIME_DIR=/run/jupyter-mary-jane",
            "LANG=C.UTF-8",
            "MEM_LIMIT=3221225472",
            "SHELL=/bin/bash",
        ],
        "Slice": "jupyter.slice",
        "RuntimeDirectory": ["jupyter-mary-jane"],
        "RuntimeDirectoryMode": 0o700,
        "CollectMode": "inactive-or-failed",
        "SyslogIdentifier": "jupyter-mary-jane",
        "LogExtraFields": [b"HOSTD_USER=mary-jane"],
        "MemoryAccounting": True,
        "CPUAccounting": True,
        "TasksAccounting": True,
        "TimeoutStopUSec": 30_000_000,
        "KillMode": "mixed",
        "OOMPolicy": "continue",
        "MemoryMax": 3221225472,
        "MemorySwapMax": 0,
        "CPUQuotaPerSecUSec": 2_000_000,
        "NoNewPrivileges": True,
        "RestrictSUIDSGID": True,
        "ReadOnlyPaths": ["/"],
        "ReadWritePaths": ["/shared/users/mary-jane", "/scratch", "/shared/users"],
        "BindReadOnlyPaths": [
            ("/srv/datasets", "/srv/datasets", False, MS_REC),
            ("/srv/models", "/srv/models", False, MS_REC),
        ],
        "IPAddressDeny": METADATA,
        "ProtectSystem": "strict",
        "TasksMax": 512,
    }
    # as_dict keeps the order, and the order is part of the golden.
    assert list(spec.as_dict()) == [prop.name for prop in spec.properties]
    assert list(spec.as_dict())[-2:] == ["ProtectSystem", "TasksMax"]
    assert spec.get("KillMode") == Property("KillMode", "s", "mixed")
    assert spec.get("PrivateTmp") is None
    assert_dbus_types(spec)


def test_output_is_deterministic() -> None:
    extras = {"TasksMax": 512, "ProtectSystem": "strict", "ProtectHome": "read-only"}
    first = build(SessionPolicy(cmd=CMD, unit_extra_properties=extras))
    second = build(SessionPolicy(cmd=CMD, unit_extra_properties=dict(reversed(extras.items()))))
    assert first == second == build(SessionPolicy(cmd=CMD, unit_extra_properties=extras))


def test_credentials_are_sorted_and_checked() -> None:
    spec = build(SEED_002, credentials={"b": "/run/b", "a.c-d_1": "/run/a"})
    assert spec.as_dict()["LoadCredential"] == [("a.c-d_1", "/run/a"), ("b", "/run/b")]
    for bad in ({"a/b": "/run/x"}, {"..": "/run/x"}, {"": "/run/x"}, {1: "/run/x"}):
        with pytest.raises(InvalidOption, match="invalid credential name"):
            build(SEED_002, credentials=bad)
    with pytest.raises(InvalidPath, match=r"^credential token: "):
        build(SEED_002, credentials={"token": "relative"})
    with pytest.raises(InvalidOption, match="credentials must be a mapping"):
        build(SEED_002, credentials=[("a", "/b")])


def test_root_is_refused() -> None:
    with pytest.raises(UserRefused):
        build(SEED_002, user=UserInfo("toor", 0, 0, "/root", "/bin/bash"))


@pytest.mark.parametrize("port", [0, 80, 1023, 65536, True, "8888", None])
def test_bad_ports(port: object) -> None:
    with pytest.raises(InvalidOption, match="invalid port"):
        build(SEED_002, port=port)


@pytest.mark.parametrize("port", [1024, 65535])
def test_edge_ports(port: int) -> None:
    assert f"--port={port}" in build(SEED_002, port=port).as_dict()["ExecStart"][0][1]  # type: ignore[index]


@pytest.mark.parametrize("base_url", ["user/alice/", "/user/alice", "//x/", "/u/$X/", 5])
def test_bad_base_urls(base_url: object) -> None:
    with pytest.raises(InvalidOption, match="invalid base URL"):
        build(SEED_002, base_url=base_url)


@pytest.mark.parametrize(
    ("user", "error"),
    [
        (UserInfo("../x", 1001, 1001, "/home/x", "/bin/sh"), InvalidName),
        (UserInfo("alice", -5, 1001, "/home/alice", "/bin/sh"), InvalidOption),
    ],
)
def test_bad_accounts(user: UserInfo, error: type[Exception]) -> None:
    with pytest.raises(error):
        build(SEED_002, user=user)


def test_bad_home_directory_is_refused_when_used() -> None:
    odd = UserInfo("alice", 1001, 1001, "/home/alice/", "/bin/sh")
    with pytest.raises(InvalidPath, match=r"^home directory: "):
        build(SessionPolicy(cmd=CMD), user=odd)
    assert build(SEED_002, user=odd).as_dict()["WorkingDirectory"] == "/shared/users/alice"


def test_expanded_templates_are_checked_with_the_real_name() -> None:
    long = "a" * 32
    policy = SessionPolicy(cmd=CMD, readonly_paths=("/" + "x" * 230 + "{USERNAME}",))
    with pytest.raises(InvalidPath, match="over 255 bytes"):
        build(policy, user=UserInfo(long, 1001, 1001, "/home/a", "/bin/sh"))


def test_user_placeholders_in_cmd_and_dollar_escaping() -> None:
    policy = SessionPolicy(
        cmd=(
            "/home/{USERNAME}/venv/bin/jupyterhub-singleuser",
            "--name={USERNAME}",
            "--uid={USERID}",
            "--keep=$HOME",
            "--literal={{USERNAME}}",
        ),
        user_workingdir="/srv/{USERNAME}",
    )
    spec = build(policy, user=UserInfo("machine$", 1005, 1005, "/home/m", "/bin/sh"))
    assert spec.name == "jupyter-machine\\x24.service"
    assert spec.as_dict()["ExecStart"] == [
        (
            "/home/machine$/venv/bin/jupyterhub-singleuser",
            [
                # systemd reads "$$" as "$" in argv, and leaves the program path alone.
                "/home/machine$$/venv/bin/jupyterhub-singleuser",
                "--name=machine$$",
                "--uid=1005",
                "--keep=$HOME",  # the admin's own text is the admin's to expand
                "--literal={USERNAME}",
            ],
            False,
        )
    ]
    assert spec.as_dict()["WorkingDirectory"] == "/srv/machine$"
    assert spec.as_dict()["SyslogIdentifier"] == "jupyter-machine\\x24"
    assert spec.as_dict()["LogExtraFields"] == [b"HOSTD_USER=machine$"]


class TestRequestedLimits:
    capped = SessionPolicy(
        cmd=CMD, mem_limit=2 * 1024**3, max_mem_limit=8 * 1024**3, cpu_limit=1.0, max_cpu_limit=4.0
    )

    def limits(
        self, policy: SessionPolicy, request: SessionRequest, **kw: Any
    ) -> tuple[object, ...]:
        found = build(policy, request, **kw).as_dict()
        return found.get("MemoryMax"), found.get("CPUQuotaPerSecUSec")

    def test_no_request_gets_the_policy(self) -> None:
        assert self.limits(self.capped, SessionRequest()) == (2 * 1024**3, 1_000_000)

    def test_lower_and_up_to_the_cap(self) -> None:
        assert self.limits(SEED_002, SessionRequest(mem_limit=1024**3, cpu_limit=0.25)) == (
            1024**3,
            250_000,
        )
        assert self.limits(self.capped, SessionRequest(mem_limit=8 * 1024**3, cpu_limit=4)) == (
            8 * 1024**3,
            4_000_000,
        )

    @pytest.mark.parametrize(
        ("request_", "text"),
        [
            (SessionRequest(mem_limit=8 * 1024**3 + 1), "requested mem_limit 8589934593"),
            (SessionRequest(cpu_limit=4.5), r"requested cpu_limit 4\.5 is above the allowed 4\.0"),
        ],
    )
    def test_above_the_cap(self, request_: SessionRequest, text: str) -> None:
        with pytest.raises(InvalidOption, match=text):
            build(self.capped, request_)
        assert self.limits(self.capped, request_, privileged=True) != (None, None)

    def test_without_a_cap_the_policy_is_the_cap(self) -> None:
        with pytest.raises(InvalidOption, match="above the allowed 2147483648"):
            build(SEED_002, SessionRequest(mem_limit=3 * 1024**3))
        with pytest.raises(InvalidOption, match=r"above the allowed 1\.0"):
            build(SEED_002, SessionRequest(cpu_limit=1.5))
        assert self.limits(SEED_002, SessionRequest(cpu_limit=1.5), privileged=True) == (
            2 * 1024**3,
            1_500_000,
        )

    def test_unlimited_policy_takes_any_request(self) -> None:
        unlimited = SessionPolicy(cmd=CMD)
        assert self.limits(unlimited, SessionRequest()) == (None, None)
        assert self.limits(unlimited, SessionRequest(mem_limit=10**12, cpu_limit=64)) == (
            10**12,
            64_000_000,
        )


class TestEnvironment:
    policy = SessionPolicy(
        cmd=CMD,
        environment={"LANG": "C.UTF-8", "JUPYTERHUB_SINGLEUSER_APP": "jupyter_server"},
        allowed_environment=("JUPYTERHUB_*", "TZ"),
    )

    def environment(self, request: SessionRequest) -> object:
        return build(self.policy, request).as_dict()["Environment"]

    def test_allowed_variables_pass(self) -> None:
        request = SessionRequest(environment={"TZ": "UTC", "JUPYTERHUB_USER": "alice"})
        assert self.environment(request) == [
            "JUPYTERHUB_SINGLEUSER_APP=jupyter_server",
            "JUPYTERHUB_USER=alice",
            "JUPYTER_RUNTIME_DIR=/run/jupyter-alice",
            "LANG=C.UTF-8",
            "SHELL=/bin/bash",
            "TZ=UTC",
        ]

    @pytest.mark.parametrize("name", ["PATH", "LD_PRELOAD", "LANG", "SHELL", "TZDIR", "JUPYTERHU"])
    def test_variables_outside_the_allowlist_are_refused(self, name: str) -> None:
        with pytest.raises(InvalidOption, match=f"environment variable {name} is not allowed"):
            build(self.policy, SessionRequest(environment={name: "x"}))

    def test_no_allowlist_means_nothing_is_allowed(self) -> None:
        closed = SessionPolicy(cmd=CMD, allowed_environment=())
        with pytest.raises(InvalidOption, match=r"\(allowed: none\)"):
            build(closed, SessionRequest(environment={"JUPYTERHUB_USER": "alice"}))

    def test_admin_variables_are_fixed(self) -> None:
        request = SessionRequest(environment={"JUPYTERHUB_SINGLEUSER_APP": "notebook"})
        with pytest.raises(InvalidOption, match="JUPYTERHUB_SINGLEUSER_APP from the request"):
            build(self.policy, request)

    def test_default_url_cannot_be_set_twice(self) -> None:
        request = SessionRequest(
            default_url="/lab", environment={"JUPYTERHUB_DEFAULT_URL": "/tree"}
        )
        with pytest.raises(InvalidOption, match="JUPYTERHUB_DEFAULT_URL from the request"):
            build(self.policy, request)
        fixed = SessionPolicy(cmd=CMD, environment={"JUPYTERHUB_DEFAULT_URL": "/lab"})
        with pytest.raises(InvalidOption, match="JUPYTERHUB_DEFAULT_URL from hostd"):
            build(fixed, SessionRequest(default_url="/tree"))

    def test_the_daemons_variables_join_and_cannot_be_replaced(self) -> None:
        daemon = {"HOSTD_PORT": "20001", "JUPYTER_TOKEN_FILE": "/run/credentials/x/token"}
        env = build(self.policy, SessionRequest(), hostd_environment=daemon).as_dict()
        assert "HOSTD_PORT=20001" in env["Environment"]  # type: ignore[operator]
        assert "JUPYTER_TOKEN_FILE=/run/credentials/x/token" in env["Environment"]  # type: ignore[operator]
        loose = SessionPolicy(cmd=CMD, allowed_environment=("HOSTD_*",))
        with pytest.raises(InvalidOption, match="HOSTD_PORT from the request"):
            build(loose, SessionRequest(environment={"HOSTD_PORT": "1"}), hostd_environment=daemon)
        with pytest.raises(InvalidOption, match="BAD-NAME"):
            build(self.policy, SessionRequest(), hostd_environment={"BAD-NAME": "x"})
        with pytest.raises(InvalidOption, match="looks like a secret"):
            # A *_FILE name holds a path; a value that is not one is the secret itself.
            build(self.policy, SessionRequest(), hostd_environment={"X_TOKEN_FILE": "s3cret"})

    def test_a_shell_variable_allowed_by_the_admin_still_cannot_replace_hostds(self) -> None:
        loose = SessionPolicy(cmd=CMD, allowed_environment=("SHELL",))
        with pytest.raises(InvalidOption, match="SHELL from the request"):
            build(loose, SessionRequest(environment={"SHELL": "/bin/zsh"}))


@FAST
@given(
    st.dictionaries(
        st.text(alphabet="ABCJPUTYEHRKN_SO", min_size=1, max_size=24),
        st.text(max_size=8),
        max_size=4,
    )
)
def test_environment_outside_the_allowlist_never_passes(environment: dict[str, str]) -> None:
    try:
        request = SessionRequest(environment=environment)
        spec = build(SEED_002, request)
    except InvalidOption:
        assert any(
            not name.startswith("JUPYTERHUB_") or looks_secret(name) for name in environment
        ) or any(char in value for value in environment.values() for char in "\n\r\x00")
        return
    passed = spec.as_dict()["Environment"]
    assert isinstance(passed, list)
    for name, value in environment.items():
        assert name.startswith("JUPYTERHUB_")
        assert f"{name}={value}" in passed


class TestHostSafety:
    """OOMPolicy=, MemorySwapMax= and IPAddressDeny=, by default and as the admin sets them."""

    def test_defaults(self) -> None:
        spec = build(SessionPolicy(cmd=CMD, mem_limit="64M"))
        assert spec.get("OOMPolicy") == Property("OOMPolicy", "s", "continue")
        # mem_limit caps swap too: MemorySwapMax=0 next to MemoryMax=.
        assert spec.get("MemoryMax") == Property("MemoryMax", "t", 64 * 1024**2)
        assert spec.get("MemorySwapMax") == Property("MemorySwapMax", "t", 0)
        assert spec.get("IPAddressDeny") == Property("IPAddressDeny", "a(iayu)", METADATA)
        assert_dbus_types(spec)

    def test_no_memory_limit_means_no_swap_limit(self) -> None:
        spec = build(SessionPolicy(cmd=CMD))
        assert spec.get("MemoryMax") is None
        assert spec.get("MemorySwapMax") is None

    def test_a_requested_limit_also_caps_swap(self) -> None:
        spec = build(SessionPolicy(cmd=CMD), SessionRequest(mem_limit="1G"))
        assert spec.get("MemorySwapMax") == Property("MemorySwapMax", "t", 0)

    def test_the_admin_switches(self) -> None:
        policy = SessionPolicy(
            cmd=CMD,
            mem_limit="1G",
            oom_policy="stop",
            allow_swap=True,
            ip_address_deny=("10.0.0.0/8", "fd00:ec2::254"),
        )
        spec = build(policy)
        assert spec.get("OOMPolicy") == Property("OOMPolicy", "s", "stop")
        assert spec.get("MemorySwapMax") is None
        assert spec.get("IPAddressDeny") == Property(
            "IPAddressDeny",
            "a(iayu)",
            [
                (AF_INET, bytes([10, 0, 0, 0]), 8),
                (AF_INET6, bytes.fromhex("fd000ec2000000000000000000000254"), 128),
            ],
        )
        assert_dbus_types(spec)

    def test_an_empty_deny_list_turns_the_firewall_off(self) -> None:
        assert build(SessionPolicy(cmd=CMD, ip_address_deny=())).get("IPAddressDeny") is None

    def test_extras_extend_the_deny_list_and_may_set_a_swap_cap(self) -> None:
        policy = SessionPolicy(
            cmd=CMD,
            mem_limit="1G",
            unit_extra_properties={"IPAddressDeny": "10.0.0.0/8", "MemorySwapMax": "512M"},
        )
        spec = build(policy)
        assert spec.get("IPAddressDeny") == Property(
            "IPAddressDeny", "a(iayu)", [*METADATA, (AF_INET, bytes([10, 0, 0, 0]), 8)]
        )
        assert spec.get("MemorySwapMax") == Property("MemorySwapMax", "t", 512 * 1024**2)


# -- where the server listens: a Unix socket ({SOCKET}) or a port ({PORT}) ------------------

LAB_ON_SOCKET = ("/opt/hostd/session/bin/jupyter", "lab", "--ServerApp.sock={SOCKET}")
SOCKET = "/run/hostd/sessions/alice/jupyter.sock"


def _value(spec: UnitSpec, name: str) -> Any:
    return next(prop.value for prop in spec.properties if prop.name == name)


def test_a_socket_cmd_gets_the_socket_path_and_no_port() -> None:
    spec = build(SessionPolicy(cmd=LAB_ON_SOCKET), port=None, socket=SOCKET)
    assert _value(spec, "ExecStart")[0][1][-1] == f"--ServerApp.sock={SOCKET}"
    assert _value(spec, "ReadWritePaths") == ["/run/hostd/sessions/alice"]
    assert not any("PORT" in entry for entry in _value(spec, "Environment"))
    assert_dbus_types(spec)


def test_the_socket_directory_stays_writable_under_a_read_only_root() -> None:
    policy = SessionPolicy(cmd=LAB_ON_SOCKET, readonly_paths=("/",), readwrite_paths=("/tmp",))
    spec = build(policy, port=None, socket=SOCKET)
    assert _value(spec, "ReadOnlyPaths") == ["/"]
    assert _value(spec, "ReadWritePaths") == ["/tmp", "/run/hostd/sessions/alice"]


def test_a_socket_cmd_without_a_socket_path_is_refused() -> None:
    with pytest.raises(InvalidOption, match="no socket path"):
        build(SessionPolicy(cmd=LAB_ON_SOCKET), socket=None)


@pytest.mark.parametrize("path", ["relative/jupyter.sock", "/run/" + "x" * 103])
def test_a_bad_or_too_long_socket_path_is_refused(path: str) -> None:
    with pytest.raises((InvalidOption, InvalidPath)):
        build(SessionPolicy(cmd=LAB_ON_SOCKET), socket=path)


def test_a_port_cmd_ignores_a_socket_and_needs_a_port() -> None:
    spec = build(SessionPolicy(cmd=CMD), socket=SOCKET)
    assert "--port=50001" in _value(spec, "ExecStart")[0][1]
    with pytest.raises(InvalidOption, match="invalid port"):
        build(SessionPolicy(cmd=CMD), port=None)


def test_a_cmd_may_not_listen_on_both() -> None:
    with pytest.raises(InvalidOption, match="both"):
        SessionPolicy(cmd=(*LAB_ON_SOCKET, "--port={PORT}"))


def test_literal_braces_are_not_a_socket_placeholder() -> None:
    assert listens_on_socket(LAB_ON_SOCKET)
    assert not listens_on_socket((SINGLEUSER, "--x={{SOCKET}}", "--port={PORT}"))
