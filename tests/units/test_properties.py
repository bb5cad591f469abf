"""Properties of the whole of units/: whatever comes in, a valid unit or a typed error.

Requests, account names, base URLs and admin directives are drawn from wide strategies (any
text, numbers of every kind, values of the wrong type). build_unit either returns a unit whose
every property has its declared D-Bus type, whose name is the user's own unit and whose
environment holds only what the allowlist and the daemon allow; or it raises a HostdError.
Nothing else (no TypeError, no ValueError, no unit for a name other than the one asked for).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hostd.units import (
    DIRECTIVES,
    HOSTD_OWNED,
    SessionPolicy,
    SessionRequest,
    UserInfo,
    build_unit,
    convert_extra_properties,
    parse_size,
    unit_name_for,
    user_for_unit_name,
)
from hostd.units.errors import HostdError
from tests.units.dbus_types import conforms

WIDE = settings(database=None, max_examples=400)
ALLOWED = ("JUPYTERHUB_API_URL", "LANG")
HOSTD_ENVIRONMENT = {"JUPYTER_PORT": "50001", "JUPYTER_TOKEN_FILE": "/run/credentials/x/token"}
POLICY = SessionPolicy(
    cmd=("/opt/jupyter/bin/jupyter-lab", "--port={PORT}", "--ServerApp.base_url={BASE_URL}"),
    mem_limit=parse_size("2G"),
    max_mem_limit=parse_size("4G"),
    cpu_limit=1.0,
    max_cpu_limit=2.0,
    isolate_tmp=True,
    isolate_devices=True,
    disable_user_sudo=True,
    allowed_environment=ALLOWED,
    user_workingdir="/home/{USERNAME}",
    readonly_paths=("/opt/shared-data",),
    readwrite_paths=("/srv/scratch/{USERNAME}",),
)

anything = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
# Each field: often a value that passes, else anything at all; so both outcomes are common.
sizes = st.none() | st.sampled_from(["1G", "512M", "3G", "5G", 2**30]) | anything
cpus = st.none() | st.sampled_from([0.5, 1.5, 2.0, 3.0, "0.5"]) | anything
names = (
    st.from_regex(r"[a-z_][a-z0-9_-]{0,30}", fullmatch=True)
    | st.from_regex(r"[a-z_][a-z0-9_.@$-]{0,40}", fullmatch=True)
    | st.text(max_size=40)
)
environments: st.SearchStrategy[object] = (
    st.just({})
    | st.dictionaries(
        st.sampled_from([*ALLOWED, "PATH", "LD_PRELOAD", "JUPYTER_TOKEN", "JUPYTER_PORT"])
        | st.text(max_size=12),
        st.text(max_size=10),
        max_size=4,
    )
    | st.just("not a mapping")
)
urls = st.none() | st.sampled_from(["/lab", "/lab?x=1", "//evil.example"]) | st.text(max_size=20)
base_urls = st.just("/user/alice/") | st.text(max_size=20)
uids = st.integers(min_value=1000, max_value=60000) | st.integers(min_value=-1, max_value=2**32)


def request_or_error(fields: dict[str, Any]) -> SessionRequest | None:
    try:
        return SessionRequest(**fields)
    except HostdError:
        return None


@WIDE
@given(
    user_name=names,
    uid=uids,
    mem=sizes,
    cpu=cpus,
    environment=environments,
    default_url=urls,
    base_url=base_urls,
    privileged=st.booleans(),
)
def test_any_input_becomes_a_valid_unit_or_a_typed_error(
    user_name: str,
    uid: int,
    mem: object,
    cpu: object,
    environment: object,
    default_url: object,
    base_url: str,
    privileged: bool,
) -> None:
    fields = {"mem_limit": mem, "cpu_limit": cpu, "environment": environment}
    request = request_or_error({**fields, "default_url": default_url})
    if request is None:
        return
    user = UserInfo(user_name, uid, uid, f"/home/{user_name}", "/bin/bash")
    try:
        spec = build_unit(
            POLICY,
            user,
            request,
            port=50001,
            base_url=base_url,
            privileged=privileged,
            hostd_environment=HOSTD_ENVIRONMENT,
        )
    except HostdError:
        return
    # The unit is the user's own, and the name round-trips to that user only.
    assert spec.name == unit_name_for(user_name)
    assert user_for_unit_name(spec.name) == user_name
    for prop in spec.properties:
        assert conforms(prop.signature, prop.value), prop
    values = spec.as_dict()
    assert values["User"] == user_name
    # Only the allowlist, the daemon's own variables and the policy's fixed ones pass.
    passed = {entry.split("=", 1)[0] for entry in values["Environment"]}  # type: ignore[attr-defined]
    requested = set(request.environment)
    assert requested <= set(ALLOWED)
    assert set(HOSTD_ENVIRONMENT) <= passed
    # Caps hold unless the caller is privileged.
    if not privileged:
        assert values["MemoryMax"] <= parse_size("4G")  # type: ignore[operator]
    # Every path is absolute and normalised (no "..", no doubled slash) after expansion.
    for key in ("ReadOnlyPaths", "ReadWritePaths"):
        for path in values.get(key, []):  # type: ignore[attr-defined]
            assert path.startswith("/") and "/../" not in f"{path}/" and "//" not in path
    assert values["WorkingDirectory"] == f"/home/{user_name}"


@WIDE
@given(
    st.dictionaries(
        st.sampled_from(sorted(DIRECTIVES))
        | st.sampled_from(sorted(HOSTD_OWNED))
        | st.text(max_size=16),
        st.sampled_from(["1G", 100, 5, "50", "infinity", True, "yes", "/srv/x", ["/srv/x"]])
        | anything
        | st.lists(st.text(max_size=8), max_size=3),
        min_size=1,
        max_size=2,
    )
)
def test_admin_directives_convert_to_their_dbus_type_or_a_typed_error(
    extra: dict[str, object],
) -> None:
    try:
        properties = convert_extra_properties(extra)
    except HostdError:
        return
    for prop in properties:
        assert conforms(prop.signature, prop.value), prop
    # The daemon owns who runs what, where and with which credentials: never the admin's table.
    assert not HOSTD_OWNED & {prop.name for prop in properties}
