"""hostd.units: what a session's transient systemd unit looks like; the error tree; the values
that cross the daemon's socket (the pure ground floor).

Loaded by: every process (the daemon, hostctl, the hub, the spawner in JupyterHub, the client).
As: whoever runs it; it holds no privilege and needs none.
Never: read files, the user database or the environment, talk to systemd or the network, or
import anything of the project outside itself (nor starlette, httpx, pystemd, psutil, sqlmodel).

Data in, data out: errors (the tree every process raises and matches), values (sessions, logs,
usage, login results), failures (how a unit ended, in words), validators for names, sizes and
paths, the value checks the config files share (checks: hostd.toml and hub.toml alike), the
table of directives an admin may set, and build_unit, which turns a policy, an account and a
request into a UnitSpec.
"""

from hostd.units.build import build_unit
from hostd.units.convert import INFINITY
from hostd.units.directives import (
    DIRECTIVES,
    HOSTD_OWNED,
    Directive,
    convert_extra_properties,
    directive_for,
)
from hostd.units.model import Property, UnitSpec, UserInfo
from hostd.units.names import (
    SLICE,
    UNIT_PREFIX,
    UNIT_SUFFIX,
    syslog_identifier_for,
    unit_name_for,
    user_for_unit_name,
    validate_username,
)
from hostd.units.paths import expand_template, substitute_placeholders, validate_path
from hostd.units.policy import SessionPolicy, SessionRequest, listens_on_socket
from hostd.units.resources import (
    cpu_limit_of,
    keep_loaded,
    limit_properties,
    slice_cap_properties,
    spec_limits,
)
from hostd.units.sizes import (
    cpu_quota_usec,
    parse_cpu,
    parse_percent_quota,
    parse_size,
    parse_timespan_usec,
)
from hostd.units.urls import validate_base_url, validate_default_url

__all__ = [
    "DIRECTIVES",
    "HOSTD_OWNED",
    "INFINITY",
    "SLICE",
    "UNIT_PREFIX",
    "UNIT_SUFFIX",
    "Directive",
    "Property",
    "SessionPolicy",
    "SessionRequest",
    "UnitSpec",
    "UserInfo",
    "build_unit",
    "convert_extra_properties",
    "cpu_limit_of",
    "cpu_quota_usec",
    "directive_for",
    "expand_template",
    "keep_loaded",
    "limit_properties",
    "listens_on_socket",
    "parse_cpu",
    "parse_percent_quota",
    "parse_size",
    "parse_timespan_usec",
    "slice_cap_properties",
    "spec_limits",
    "substitute_placeholders",
    "syslog_identifier_for",
    "unit_name_for",
    "user_for_unit_name",
    "validate_base_url",
    "validate_default_url",
    "validate_path",
    "validate_username",
]
