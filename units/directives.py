"""The unit directives an admin may set, as a table (pure layer; no I/O).

Each entry ties a unit-file directive (what admins write, as in systemdspawner's
``unit_extra_properties``) to the D-Bus property a transient unit takes, its signature and a
converter. Signatures are systemd 252's (org.freedesktop.systemd1(5)); pystemd's own table
lacks several, so hostd/ builds the D-Bus message from these.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from hostd.units import convert as c
from hostd.units._text import prefixed, show
from hostd.units.errors import InvalidOption, UnknownDirective
from hostd.units.gpus import device_allow
from hostd.units.model import Property
from hostd.units.paths import validate_path
from hostd.units.sizes import parse_percent_quota

__all__ = ["DIRECTIVES", "HOSTD_OWNED", "Directive", "convert_extra_properties", "directive_for"]


@dataclass(frozen=True)
class Directive:
    """A unit-file directive, the D-Bus property it becomes, and how its value converts.

    ``convert`` raises InvalidOption, InvalidSize or InvalidPath naming the directive.
    """

    name: str
    dbus_name: str
    signature: str
    convert: c.Converter
    ref: str

    def property(self, value: object) -> Property:
        """The D-Bus property for an admin's value of this directive."""
        return Property(self.dbus_name, self.signature, self.convert(value))


def _named(name: str, convert: c.Converter) -> c.Converter:
    def named(value: object) -> object:
        with prefixed(name):
            return convert(value)

    return named


def _table(*entries: tuple[str, str, str, c.Converter, str]) -> Mapping[str, Directive]:
    return MappingProxyType(
        {
            name: Directive(name, dbus_name, signature, _named(name, convert), ref)
            for name, dbus_name, signature, convert, ref in entries
        }
    )


_RC = "systemd.resource-control(5)"
_EXEC = "systemd.exec(5)"
_SERVICE = "systemd.service(5)"
_KILL = "systemd.kill(5)"
_UNIT = "systemd.unit(5)"

_PROTECT_SYSTEM = c.choice("yes", "no", "full", "strict", booleans=True)
_PROTECT_HOME = c.choice("yes", "no", "read-only", "tmpfs", booleans=True)
_PRESERVE = c.choice("yes", "no", "restart", booleans=True)

DIRECTIVES: Mapping[str, Directive] = _table(
    # name, D-Bus name, signature, converter, ref
    ("MemoryAccounting", "MemoryAccounting", "b", c.must_stay_on, _RC),
    ("CPUAccounting", "CPUAccounting", "b", c.must_stay_on, _RC),
    ("TasksAccounting", "TasksAccounting", "b", c.must_stay_on, _RC),
    ("IOAccounting", "IOAccounting", "b", c.to_bool, _RC),
    ("MemoryMax", "MemoryMax", "t", c.size(), _RC),
    ("MemoryHigh", "MemoryHigh", "t", c.size(), _RC),
    ("MemoryLow", "MemoryLow", "t", c.size(zero=True, infinity=False), _RC),
    # 0 is meaningful here: no swap at all.
    ("MemorySwapMax", "MemorySwapMax", "t", c.size(zero=True), _RC),
    # CPUQuota= is written as a percentage; D-Bus takes µs of CPU time per second.
    ("CPUQuota", "CPUQuotaPerSecUSec", "t", parse_percent_quota, _RC),
    ("CPUWeight", "CPUWeight", "t", c.int_range(1, 10000), _RC),
    ("IOWeight", "IOWeight", "t", c.int_range(1, 10000), _RC),
    ("TasksMax", "TasksMax", "t", c.count_or_infinity, _RC),
    # eBPF on the unit's cgroup (cgroup v2); Allow= wins over Deny= for an address in both.
    ("IPAddressDeny", "IPAddressDeny", "a(iayu)", c.ip_prefixes, _RC),
    ("IPAddressAllow", "IPAddressAllow", "a(iayu)", c.ip_prefixes, _RC),
    # Device nodes the unit may open ("/dev/nvidia0 rw"); hostd adds a session's GPUs'.
    ("DeviceAllow", "DeviceAllow", "a(ss)", device_allow, _RC),
    ("DevicePolicy", "DevicePolicy", "s", c.choice("auto", "closed", "strict"), _RC),
    ("PrivateTmp", "PrivateTmp", "b", c.to_bool, _EXEC),
    ("PrivateDevices", "PrivateDevices", "b", c.to_bool, _EXEC),
    ("PrivateNetwork", "PrivateNetwork", "b", c.to_bool, _EXEC),
    ("NoNewPrivileges", "NoNewPrivileges", "b", c.to_bool, _EXEC),
    ("RestrictSUIDSGID", "RestrictSUIDSGID", "b", c.to_bool, _EXEC),
    ("ProtectKernelTunables", "ProtectKernelTunables", "b", c.to_bool, _EXEC),
    ("ProtectKernelModules", "ProtectKernelModules", "b", c.to_bool, _EXEC),
    ("ProtectKernelLogs", "ProtectKernelLogs", "b", c.to_bool, _EXEC),
    ("ProtectControlGroups", "ProtectControlGroups", "b", c.to_bool, _EXEC),
    ("ProtectClock", "ProtectClock", "b", c.to_bool, _EXEC),
    ("ProtectHostname", "ProtectHostname", "b", c.to_bool, _EXEC),
    ("LockPersonality", "LockPersonality", "b", c.to_bool, _EXEC),
    ("RestrictRealtime", "RestrictRealtime", "b", c.to_bool, _EXEC),
    ("MemoryDenyWriteExecute", "MemoryDenyWriteExecute", "b", c.to_bool, _EXEC),
    ("RemoveIPC", "RemoveIPC", "b", c.to_bool, _EXEC),
    ("ProtectSystem", "ProtectSystem", "s", _PROTECT_SYSTEM, _EXEC),
    ("ProtectHome", "ProtectHome", "s", _PROTECT_HOME, _EXEC),
    ("ReadOnlyPaths", "ReadOnlyPaths", "as", c.path_list, _EXEC),
    ("ReadWritePaths", "ReadWritePaths", "as", c.path_list, _EXEC),
    ("InaccessiblePaths", "InaccessiblePaths", "as", c.path_list, _EXEC),
    ("BindPaths", "BindPaths", "a(ssbt)", c.bind_paths, _EXEC),
    ("BindReadOnlyPaths", "BindReadOnlyPaths", "a(ssbt)", c.bind_paths, _EXEC),
    ("RuntimeDirectoryPreserve", "RuntimeDirectoryPreserve", "s", _PRESERVE, _EXEC),
    ("UMask", "UMask", "u", c.umask, _EXEC),
    ("Nice", "Nice", "i", c.int_range(-20, 19), _EXEC),
    ("LimitNOFILE", "LimitNOFILE", "t", c.count_or_infinity, _EXEC),
    ("WorkingDirectory", "WorkingDirectory", "s", validate_path, _EXEC),
    ("TimeoutStopSec", "TimeoutStopUSec", "t", c.timespan(infinity=False), _SERVICE),
    ("RuntimeMaxSec", "RuntimeMaxUSec", "t", c.timespan(infinity=True), _SERVICE),
    ("OOMPolicy", "OOMPolicy", "s", c.choice("continue", "stop", "kill"), _SERVICE),
    # "none" is left out: it leaves a session's processes running after a stop.
    ("KillMode", "KillMode", "s", c.choice("control-group", "mixed", "process"), _KILL),
    ("Description", "Description", "s", c.description, _UNIT),
)  # fmt: skip

# Set by hostd on every unit, or able to run code as root, read another user's files or
# re-grant privilege: an admin may not name these in unit_extra_properties.
HOSTD_OWNED = frozenset(
    {
        # identity and what runs
        "User", "Group", "DynamicUser", "SupplementaryGroups", "PAMName",
        "ExecStart", "ExecStartPre", "ExecStartPost", "ExecCondition", "ExecReload",
        "ExecStop", "ExecStopPost", "Type", "RootDirectory", "RootImage",
        # environment and secrets: Environment= is readable by every local user over D-Bus
        # (GHSA-cg54-gpgr-4rm6), so secrets go through credentials that hostd sets
        "Environment", "EnvironmentFile", "PassEnvironment", "UnsetEnvironment",
        "LoadCredential", "LoadCredentialEncrypted", "SetCredential", "SetCredentialEncrypted",
        # life cycle and bookkeeping hostd relies on
        "CollectMode", "Slice", "AddRef", "SyslogIdentifier", "LogExtraFields", "Delegate",
        # isolate_tmp's private /dev/shm
        "TemporaryFileSystem",
        # privilege
        "AmbientCapabilities", "CapabilityBoundingSet", "SecureBits", "KeyringMode",
        # systemd opens these files as root before dropping privileges (systemd.exec(5))
        "StandardInput", "StandardOutput", "StandardError", "TTYPath",
    }
)  # fmt: skip

# Old names (systemdspawner used several) and their current directive.
_RENAMED = {
    "MemoryLimit": "MemoryMax",
    "CPUShares": "CPUWeight",
    "BlockIOWeight": "IOWeight",
    "ReadOnlyDirectories": "ReadOnlyPaths",
    "ReadWriteDirectories": "ReadWritePaths",
    "InaccessibleDirectories": "InaccessiblePaths",
}
_BY_DBUS_NAME = {d.dbus_name: d.name for d in DIRECTIVES.values() if d.dbus_name != d.name}


def _suggest(name: str) -> list[str]:
    known = _RENAMED.get(name) or _BY_DBUS_NAME.get(name)
    if known is not None:
        return [known]
    return difflib.get_close_matches(name, list(DIRECTIVES), n=3)


def directive_for(name: object) -> Directive:
    """The table entry of a directive an admin may set, or the error that explains why not."""
    if not isinstance(name, str):
        raise InvalidOption(f"a directive name must be a string, not {show(name)}")
    if name in HOSTD_OWNED:
        raise InvalidOption(f"{name} is set by hostd; unit_extra_properties cannot change it")
    directive = DIRECTIVES.get(name)
    if directive is None:
        hints = _suggest(name)
        hint = f" (did you mean {' or '.join(hints)}?)" if hints else ""
        raise UnknownDirective(f"unknown directive {show(name)}{hint}")
    return directive


def convert_extra_properties(extra: Mapping[str, object]) -> tuple[Property, ...]:
    """The D-Bus properties for an admin's unit_extra_properties, sorted by directive name."""
    if not isinstance(extra, Mapping):
        raise InvalidOption(f"unit_extra_properties must be a mapping, not {show(extra)}")
    directives = [directive_for(name) for name in extra]
    return tuple(d.property(extra[d.name]) for d in sorted(directives, key=lambda d: d.name))
