"""units.directives: the table of directives an admin may set, and its converters."""

from __future__ import annotations

import pytest

from hostd.units.convert import INFINITY, MS_REC
from hostd.units.directives import (
    DIRECTIVES,
    HOSTD_OWNED,
    convert_extra_properties,
    directive_for,
)
from hostd.units.errors import (
    InvalidInput,
    InvalidOption,
    InvalidPath,
    InvalidSize,
    UnknownDirective,
)
from hostd.units.model import Property
from tests.units.dbus_types import conforms

G = 1024**3
REFS = {
    "systemd.exec(5)",
    "systemd.resource-control(5)",
    "systemd.service(5)",
    "systemd.kill(5)",
    "systemd.unit(5)",
}
# D-Bus types of transient-unit properties, from systemd 252 (see SYSTEMD-NOTES.md).
DBUS_TYPES = {
    "MemoryMax": "t",
    "MemoryHigh": "t",
    "MemorySwapMax": "t",
    "TasksMax": "t",
    "CPUQuotaPerSecUSec": "t",
    "CPUWeight": "t",
    "IOWeight": "t",
    "TimeoutStopUSec": "t",
    "RuntimeMaxUSec": "t",
    "PrivateTmp": "b",
    "PrivateDevices": "b",
    "NoNewPrivileges": "b",
    "RestrictSUIDSGID": "b",
    "ReadOnlyPaths": "as",
    "ReadWritePaths": "as",
    "BindPaths": "a(ssbt)",
    "BindReadOnlyPaths": "a(ssbt)",
    "ProtectSystem": "s",
    "ProtectHome": "s",
    "KillMode": "s",
    "OOMPolicy": "s",
    "WorkingDirectory": "s",
    "UMask": "u",
    "Nice": "i",
    "IPAddressDeny": "a(iayu)",
    "IPAddressAllow": "a(iayu)",
}
REQUIRED = {
    "MemoryMax", "MemoryHigh", "MemorySwapMax", "MemoryAccounting", "CPUAccounting",
    "TasksAccounting", "IOAccounting", "CPUQuota", "CPUWeight", "IOWeight", "TasksMax",
    "PrivateTmp", "PrivateDevices", "PrivateNetwork", "NoNewPrivileges", "RestrictSUIDSGID",
    "ProtectKernelTunables", "ProtectKernelModules", "ProtectControlGroups", "ProtectClock",
    "LockPersonality", "RestrictRealtime", "ProtectSystem", "ProtectHome", "ReadOnlyPaths",
    "ReadWritePaths", "InaccessiblePaths", "BindPaths", "BindReadOnlyPaths", "TimeoutStopSec",
    "RuntimeMaxSec", "KillMode", "OOMPolicy", "UMask", "Nice", "LimitNOFILE",
    "WorkingDirectory", "Description",
}  # fmt: skip


def test_table_covers_the_required_directives() -> None:
    assert DIRECTIVES.keys() >= REQUIRED


@pytest.mark.parametrize("name", sorted(DIRECTIVES))
def test_table_entry(name: str) -> None:
    directive = DIRECTIVES[name]
    assert directive.name == name
    assert directive.ref in REFS
    assert DBUS_TYPES.get(directive.dbus_name, directive.signature) == directive.signature


def test_dbus_names_are_unique_and_owned_names_are_not_in_the_table() -> None:
    dbus_names = [directive.dbus_name for directive in DIRECTIVES.values()]
    assert len(dbus_names) == len(set(dbus_names))
    assert not HOSTD_OWNED & DIRECTIVES.keys()
    for name in ("User", "Group", "ExecStart", "Environment", "Type", "CollectMode", "Slice",
                 "SyslogIdentifier", "LogExtraFields", "LoadCredential", "SetCredential",
                 "DynamicUser", "PAMName", "RootDirectory", "AddRef", "AmbientCapabilities",
                 "CapabilityBoundingSet", "SupplementaryGroups"):  # fmt: skip
        assert name in HOSTD_OWNED


ACCEPTED = [
    ("MemoryMax", "2G", 2 * G),
    ("MemoryMax", 1048576, 1048576),
    ("MemoryMax", "infinity", INFINITY),
    ("MemoryHigh", "1.5G", 3 * G // 2),
    ("MemoryLow", 0, 0),
    ("MemoryLow", "256M", 256 * 1024**2),
    ("MemorySwapMax", "0", 0),
    ("MemorySwapMax", 0, 0),
    ("MemorySwapMax", "infinity", INFINITY),
    ("MemorySwapMax", "1G", G),
    ("MemoryAccounting", "yes", True),
    ("CPUAccounting", True, True),
    ("TasksAccounting", "on", True),
    ("IOAccounting", "no", False),
    ("CPUQuota", "150%", 1_500_000),
    ("CPUWeight", 100, 100),
    ("CPUWeight", "10000", 10000),
    ("IOWeight", "1", 1),
    ("TasksMax", 512, 512),
    ("TasksMax", "4096", 4096),
    ("TasksMax", "infinity", INFINITY),
    ("PrivateTmp", True, True),
    ("PrivateTmp", "yes", True),
    ("PrivateDevices", "1", True),
    ("PrivateNetwork", "false", False),
    ("NoNewPrivileges", "On", True),
    ("RestrictSUIDSGID", "off", False),
    ("ProtectKernelTunables", "0", False),
    ("ProtectKernelModules", "true", True),
    ("ProtectControlGroups", True, True),
    ("ProtectClock", True, True),
    ("LockPersonality", "y", True),
    ("RestrictRealtime", "n", False),
    ("ProtectSystem", "strict", "strict"),
    ("ProtectSystem", "full", "full"),
    ("ProtectSystem", True, "yes"),
    ("ProtectSystem", "off", "no"),
    ("ProtectHome", "read-only", "read-only"),
    ("ProtectHome", "tmpfs", "tmpfs"),
    ("ProtectHome", False, "no"),
    ("RuntimeDirectoryPreserve", "no", "no"),
    ("RuntimeDirectoryPreserve", "restart", "restart"),
    ("ReadOnlyPaths", "/opt/data", ["/opt/data"]),
    ("ReadOnlyPaths", "/a /b", ["/a", "/b"]),
    ("ReadOnlyPaths", ["/opt/My Data", "/b"], ["/opt/My Data", "/b"]),
    ("ReadWritePaths", ("/tmp",), ["/tmp"]),
    ("InaccessiblePaths", [], []),
    ("BindPaths", "/srv/data", [("/srv/data", "/srv/data", False, MS_REC)]),
    ("BindPaths", "/srv/data:/data", [("/srv/data", "/data", False, MS_REC)]),
    ("BindPaths", ["/a:/b:norbind"], [("/a", "/b", False, 0)]),
    ("BindReadOnlyPaths", "/a:/b:rbind /c",
     [("/a", "/b", False, MS_REC), ("/c", "/c", False, MS_REC)]),
    ("TimeoutStopSec", 30, 30_000_000),
    ("TimeoutStopSec", "1min 30s", 90_000_000),
    ("RuntimeMaxSec", "8h", 8 * 3_600_000_000),
    ("RuntimeMaxSec", "infinity", INFINITY),
    ("KillMode", "mixed", "mixed"),
    ("OOMPolicy", "kill", "kill"),
    ("IPAddressDeny", "169.254.169.254", [(2, bytes([169, 254, 169, 254]), 32)]),
    ("IPAddressDeny", ["10.0.0.0/8", "fd00::/8", "10.0.0.0/8"],
     [(2, bytes([10, 0, 0, 0]), 8), (10, bytes([0xFD]) + bytes(15), 8)]),
    ("IPAddressDeny", "any", [(2, bytes(4), 0), (10, bytes(16), 0)]),
    ("IPAddressAllow", "localhost 192.0.2.0/24",
     [(2, bytes([127, 0, 0, 0]), 8), (10, bytes(15) + b"\x01", 128),
      (2, bytes([192, 0, 2, 0]), 24)]),
    ("IPAddressDeny", [], []),
    ("UMask", "0077", 0o077),
    ("UMask", "027", 0o027),
    ("UMask", 0o022, 0o022),
    ("Nice", -20, -20),
    ("Nice", "19", 19),
    ("Nice", "+5", 5),
    ("LimitNOFILE", 65536, 65536),
    ("LimitNOFILE", "infinity", INFINITY),
    ("WorkingDirectory", "/srv/work", "/srv/work"),
    ("Description", "Notebook of a user", "Notebook of a user"),
    ("DeviceAllow", "/dev/nvidia0 rw", [("/dev/nvidia0", "rw")]),
    ("DeviceAllow", ["/dev/nvidiactl", "char-nvidia-uvm r"],
     [("/dev/nvidiactl", "rwm"), ("char-nvidia-uvm", "r")]),
    ("DevicePolicy", "closed", "closed"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "value", "expected"), ACCEPTED)
def test_converters_accept(name: str, value: object, expected: object) -> None:
    directive = DIRECTIVES[name]
    converted = directive.convert(value)
    assert converted == expected
    assert conforms(directive.signature, converted)
    assert directive.property(value) == Property(directive.dbus_name, directive.signature, expected)


REFUSED: list[tuple[str, object, type[InvalidInput]]] = [
    ("MemoryMax", "2X", InvalidSize),
    ("MemoryMax", 0, InvalidSize),
    ("MemoryMax", "Infinity", InvalidSize),
    ("MemoryMax", True, InvalidSize),
    ("MemoryLow", "infinity", InvalidSize),
    ("MemorySwapMax", False, InvalidSize),
    ("MemorySwapMax", 0.0, InvalidSize),
    ("MemorySwapMax", -1, InvalidSize),
    ("MemoryAccounting", False, InvalidOption),
    ("CPUAccounting", "no", InvalidOption),
    ("TasksAccounting", "maybe", InvalidOption),
    ("IOAccounting", 1, InvalidOption),
    ("CPUQuota", "150", InvalidSize),
    ("CPUQuota", 1.5, InvalidSize),
    ("CPUWeight", 0, InvalidOption),
    ("CPUWeight", 10001, InvalidOption),
    ("CPUWeight", True, InvalidOption),
    ("CPUWeight", "idle", InvalidOption),
    ("IOWeight", 1.5, InvalidOption),
    ("TasksMax", 0, InvalidOption),
    ("TasksMax", "50%", InvalidOption),
    ("TasksMax", INFINITY, InvalidOption),
    ("PrivateTmp", "disabled", InvalidOption),
    ("PrivateTmp", None, InvalidOption),
    ("NoNewPrivileges", [], InvalidOption),
    ("ProtectSystem", "read-only", InvalidOption),
    ("ProtectSystem", 2, InvalidOption),
    ("ProtectHome", "strict", InvalidOption),
    ("RuntimeDirectoryPreserve", "always", InvalidOption),
    ("ReadOnlyPaths", "relative/path", InvalidPath),
    ("ReadOnlyPaths", "-/opt/optional", InvalidPath),
    ("ReadWritePaths", ["/ok", 3], InvalidOption),
    ("InaccessiblePaths", {"/a"}, InvalidOption),
    ("InaccessiblePaths", None, InvalidOption),
    ("BindPaths", "/a:relative", InvalidPath),
    ("BindPaths", "/a:/b:ro", InvalidPath),
    ("BindReadOnlyPaths", "-/a", InvalidPath),
    ("TimeoutStopSec", "infinity", InvalidOption),
    ("TimeoutStopSec", 0, InvalidOption),
    ("TimeoutStopSec", "0s", InvalidOption),
    ("TimeoutStopSec", "soon", InvalidOption),
    ("RuntimeMaxSec", 0, InvalidOption),
    ("KillMode", "none", InvalidOption),
    ("KillMode", "Mixed", InvalidOption),
    ("OOMPolicy", "panic", InvalidOption),
    ("IPAddressDeny", "169.254.169.254/33", InvalidOption),
    ("IPAddressDeny", "10.0.0.1/8", InvalidOption),
    ("IPAddressDeny", "localhost6", InvalidOption),
    ("IPAddressDeny", 169, InvalidOption),
    ("IPAddressAllow", ["::1", None], InvalidOption),
    ("UMask", "0778", InvalidOption),
    ("UMask", "1777", InvalidOption),
    ("UMask", 0o1000, InvalidOption),
    ("UMask", -1, InvalidOption),
    ("UMask", True, InvalidOption),
    ("UMask", "u=rwx", InvalidOption),
    ("Nice", -21, InvalidOption),
    ("Nice", 20, InvalidOption),
    ("Nice", "5.0", InvalidOption),
    ("LimitNOFILE", 0, InvalidOption),
    ("LimitNOFILE", "1024:4096", InvalidOption),
    ("WorkingDirectory", "~", InvalidPath),
    ("WorkingDirectory", "/a/../b", InvalidPath),
    ("Description", "", InvalidOption),
    ("Description", "x" * 257, InvalidOption),
    ("Description", "two\nlines", InvalidOption),
    ("Description", 5, InvalidOption),
    ("DeviceAllow", "/dev/nvidia0 rx", InvalidOption),
    ("DeviceAllow", "", InvalidOption),
    ("DeviceAllow", [5], InvalidOption),
    ("DeviceAllow", 5, InvalidOption),
    ("DeviceAllow", "dev/nvidia0", InvalidPath),
    ("DevicePolicy", "open", InvalidOption),
]


@pytest.mark.parametrize(("name", "value", "error"), REFUSED)
def test_converters_refuse_naming_the_directive(
    name: str, value: object, error: type[InvalidInput]
) -> None:
    with pytest.raises(error) as caught:
        DIRECTIVES[name].convert(value)
    assert type(caught.value) is error
    assert caught.value.message.startswith(f"{name}: ")


def test_directive_for() -> None:
    assert directive_for("TasksMax") is DIRECTIVES["TasksMax"]


@pytest.mark.parametrize("name", sorted(HOSTD_OWNED))
def test_owned_directives_are_refused(name: str) -> None:
    with pytest.raises(InvalidOption, match=f"^{name} is set by hostd"):
        convert_extra_properties({name: "x"})


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("MemoryLimit", "MemoryMax"),
        ("ReadOnlyDirectories", "ReadOnlyPaths"),
        ("ReadWriteDirectories", "ReadWritePaths"),
        ("CPUShares", "CPUWeight"),
        ("TimeoutStopUSec", "TimeoutStopSec"),
        ("CPUQuotaPerSecUSec", "CPUQuota"),
        ("PrivateTMP", "PrivateTmp"),
        ("ProtectSystems", "ProtectSystem"),
    ],
)
def test_unknown_directives_suggest(name: str, hint: str) -> None:
    with pytest.raises(UnknownDirective) as caught:
        convert_extra_properties({name: "x"})
    assert repr(name) in caught.value.message
    assert f"did you mean {hint}" in caught.value.message


def test_unknown_directive_without_a_close_match() -> None:
    with pytest.raises(UnknownDirective) as caught:
        convert_extra_properties({"Xyzzy": 1})
    assert caught.value.message == "unknown directive 'Xyzzy'"


def test_bad_shapes() -> None:
    with pytest.raises(InvalidOption, match="must be a string"):
        convert_extra_properties({1: "x"})  # type: ignore[dict-item]
    with pytest.raises(InvalidOption, match="must be a mapping"):
        convert_extra_properties([("TasksMax", 5)])  # type: ignore[arg-type]


def test_convert_extra_properties_sorts_by_directive() -> None:
    converted = convert_extra_properties(
        {"TasksMax": 512, "CPUQuota": "50%", "ProtectSystem": "strict", "KillMode": "mixed"}
    )
    assert converted == (
        Property("CPUQuotaPerSecUSec", "t", 500_000),
        Property("KillMode", "s", "mixed"),
        Property("ProtectSystem", "s", "strict"),
        Property("TasksMax", "t", 512),
    )
    assert convert_extra_properties({}) == ()


def test_a_bad_value_names_its_directive() -> None:
    with pytest.raises(InvalidSize, match=r"^MemoryHigh: invalid size '12 parsecs'"):
        convert_extra_properties({"TasksMax": 5, "MemoryHigh": "12 parsecs"})
