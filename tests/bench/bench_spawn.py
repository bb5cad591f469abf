"""Issue 8 §1 and the stop latency: one spawn at a time, request -> the server answers HTTP.

The spawn rows run interleaved (a, b, d, f, a, b, ...) in one phase so that a change in the
machine's load (it is shared) falls on every row alike; each repetition uses a fresh user,
stops the server 1 s after it answered and times the stop.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from tests.bench.context import Context
from tests.bench.drivers import Driver, RawDriver, Spawned
from tests.bench.env import settle, sh
from tests.bench.framework import Result, row

ROW_DRIVERS: dict[str, tuple[str, Callable[[Context], Driver]]] = {
    "a tiny": ("ta", lambda ctx: RawDriver("tiny")),
    "b tiny": ("tb", lambda ctx: ctx.hostd_driver({"command": "tiny"})),
    "a": ("fa", lambda ctx: RawDriver()),
    "a su": ("fs", lambda ctx: RawDriver("singleuser", ctx.fake_hub_api())),
    "b": ("fb", lambda ctx: ctx.hostd_driver()),
    "a pip": ("pa", lambda ctx: RawDriver("pip")),
    "b pip": ("pb", lambda ctx: ctx.hostd_driver({"command": "pip"})),
    "c": ("fc", lambda ctx: ctx.our_hub()),
    "d": ("fd", lambda ctx: ctx.spawner_hub()),
    "f": ("ff", lambda ctx: ctx.anchor()),
}
STOP_PAUSE_S = 1.0


def _unavailable(ctx: Context, key: str) -> str | None:
    if key == "c":
        return ctx.our_hub_unavailable()
    if key == "d":
        return ctx.spawner_unavailable()
    return None


def spawn_phase(ctx: Context) -> dict[str, Any]:
    if "spawn" in ctx.data:
        return dict(ctx.data["spawn"])
    phase: dict[str, Any] = {}
    drivers: dict[str, tuple[str, Driver]] = {}
    for key, (prefix, make) in ROW_DRIVERS.items():
        if not (ctx.wanted(key) or ctx.wanted(f"stop {key}")):
            continue
        why = _unavailable(ctx, key)
        if why is not None:
            phase[key] = Result.unavailable(why)
            continue
        try:
            drivers[key] = (prefix, make(ctx))
        except Exception as exc:
            ctx.log(f"  {key}: cannot start: {exc}")
            phase[key] = Result.error(f"cannot start: {str(exc)[:300]}")
    spawns: dict[str, list[Spawned]] = {key: [] for key in drivers}
    stops: dict[str, list[float]] = {key: [] for key in drivers}
    stop_parts: dict[str, dict[str, list[float]]] = {key: {} for key in drivers}
    cold: dict[str, float] = {}
    for rep in range(-1, ctx.reps):  # rep -1: one untimed warm-up spawn per row
        for key, (prefix, driver) in drivers.items():
            user = ctx.users.make(prefix)
            driver.prepare(user)
            settle(max_s=10)
            spawned = driver.spawn(user)
            ctx.log(f"  {key} #{rep}: {'ok' if spawned.ok else 'FAILED ' + spawned.reason} "
                    f"{spawned.seconds:.2f} s cpu {spawned.cpu_s}")  # fmt: skip
            if spawned.ok:
                time.sleep(STOP_PAUSE_S)
            stop_s = driver.stop(user)
            if rep < 0:
                cold[key] = spawned.seconds
                continue
            spawns[key].append(spawned)
            if spawned.ok:
                stops[key].append(stop_s)
                for name, seconds in driver.stop_parts.items():
                    stop_parts[key].setdefault(name, []).append(seconds)
    floors = {"b": "a", "c": "a", "b tiny": "a tiny", "d": "a su", "f": "a su", "b pip": "a pip"}
    for key, results in spawns.items():
        ok = [s for s in results if s.ok]
        extra: dict[str, Any] = {
            "cold_first_spawn_s": cold.get(key),
            "start_cpu_s": [s.cpu_s for s in ok],
            "failures": [s.reason for s in results if not s.ok],
        }
        floor = floors.get(key)
        if floor in spawns:
            # Same repetition, back to back: the machine's load drifts less within a pair.
            pairs = [
                x.seconds - y.seconds
                for x, y in zip(results, spawns[floor], strict=True)
                if x.ok and y.ok
            ]
            if pairs:
                extra[f"paired_minus_{floor.replace(' ', '_')}_s"] = pairs
                extra["paired_median_over_floor_s"] = statistics.median(pairs)
        for name in ("api_answer_s", "ready_event_s"):
            values = [s.extra[name] for s in ok if name in s.extra]
            if values:
                extra[name] = values
        phase[key] = Result(
            samples=[s.seconds for s in ok],
            attempts=len(results),
            successes=len(ok),
            extra=extra,
        )
        phase[f"stop {key}"] = Result(samples=stops[key], extra=dict(stop_parts[key]))
    ctx.data["spawn"] = phase
    return dict(phase)


def _spawn_row(key: str) -> Any:
    def run(ctx: Context) -> Result:
        return spawn_phase(ctx)[key]  # type: ignore[no-any-return]

    return run


def _stop_row(key: str) -> Any:
    def run(ctx: Context) -> Result:
        phase = spawn_phase(ctx)
        if f"stop {key}" in phase:
            return phase[f"stop {key}"]  # type: ignore[no-any-return]
        return Result(status=phase[key].status)

    return run


@row("a0", "spawn", "bare transient unit: systemd-run --wait /bin/true")
def bare_unit(ctx: Context) -> Result:
    samples = []
    for _ in range(ctx.true_reps):
        t0 = time.monotonic()
        sh("systemd-run", "--quiet", "--wait", "-p", "CollectMode=inactive-or-failed", "/bin/true")
        samples.append(time.monotonic() - t0)
    return Result(samples=samples)


SPAWN_TITLES = {
    "a tiny": "floor, tiny server: systemd-run of python3 -m http.server, polling",
    "b tiny": "hostd API, tiny server ([commands] tiny)",
    "a": "floor: systemd-run of JupyterLab, polling until /api answers",
    "a su": "floor for JupyterHub's rows: systemd-run of jupyterhub-singleuser",
    "b": "hostd API: POST /v1/sessions/{user}?wait=true",
    "a pip": "floor, JupyterLab as pip installs it (session-pip: with rfc3987-syntax)",
    "b pip": "hostd API, JupyterLab as pip installs it ([commands] pip)",
    "c": "through hostd-hub: POST /hub/api/users/{name}/server",
    "d": "JupyterHub 6 + HostdSpawner",
    "f": "anchor: JupyterHub 6 + systemdspawner 1.0.2 (seed 002)",
}
STOP_TITLES = {
    "a tiny": "systemctl stop, tiny server",
    "b tiny": "hostd: DELETE, tiny server",
    "a": "systemctl stop (floor)",
    "a su": "systemctl stop, jupyterhub-singleuser (the floor of d and f)",
    "b": "hostd: DELETE /v1/sessions/{user}",
    "a pip": "systemctl stop, JupyterLab as pip installs it (session-pip)",
    "b pip": "hostd: DELETE, session-pip",
    "c": "hostd-hub: DELETE /hub/api/users/{name}/server",
    "d": "JupyterHub + HostdSpawner: DELETE .../server",
    "f": "JupyterHub + systemdspawner: DELETE .../server",
}
for _key, _title in SPAWN_TITLES.items():
    row(_key, "spawn", _title)(_spawn_row(_key))
for _key, _title in STOP_TITLES.items():
    row(f"stop {_key}", "stop", _title)(_stop_row(_key))
