"""Run the benchmark (inside packaging/testbed; packaging/bench.sh does the set-up):

    packaging/testbed run -- .venv/bin/python -m tests.bench [--quick] [--only KEY,...]

Prints one table (markdown) and writes it with every sample as JSON under tests/bench/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from tests.bench import (  # noqa: F401 (they register the rows)
    bench_concurrent,
    bench_footprint,
    bench_proxy,
    bench_spawn,
)
from tests.bench.context import Context
from tests.bench.env import ANCHOR_VENV, CACHE, SESSION_VENV, TOP, machine_busy_s, own_cpu_s
from tests.bench.framework import ROWS, SECTIONS, Interrupted, Result, Row, run_rows, to_json
from tests.bench.report import render

RESULTS = TOP / "tests" / "bench" / "results"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for venv, names in (
        (SESSION_VENV, ("jupyterlab", "jupyter-server")),
        (ANCHOR_VENV, ("jupyterhub", "jupyterhub-systemdspawner")),
    ):
        for name in names:
            found = subprocess.run(
                [str(venv / "bin" / "python"), "-c",
                 f"import importlib.metadata as m; print(m.version({name!r}))"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            out[name] = found.stdout.strip() or "missing"
    package = CACHE / "node" / "node_modules" / "configurable-http-proxy" / "package.json"
    try:
        out["configurable-http-proxy"] = json.loads(package.read_text())["version"]
    except (OSError, ValueError, KeyError):
        out["configurable-http-proxy"] = "missing"
    return out


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(TOP), *args], capture_output=True, text=True, check=False
    )
    return done.stdout.strip()


def render_again(path: Path) -> int:
    """The table of a results file, made again from its samples by this report code."""
    data = json.loads(path.read_text())
    by_key = {r.key: r for r in ROWS}
    results: dict[str, Result] = {}
    rows = []
    for entry in data["rows"]:
        fields = {f: entry[f] for f in Result.__dataclass_fields__}
        results[entry["key"]] = Result(**fields)
        rows.append(
            by_key.get(entry["key"])
            or Row(entry["key"], entry["section"], entry["title"], lambda c: Result())
        )
    print(render(results, rows, data["meta"]))
    return 0


def finish(
    results: dict[str, Result],
    rows: list[Row],
    ctx: Context,
    args: argparse.Namespace,
    mode: str,
    start: tuple[float, float, float | None],
) -> None:
    """Print the table and write the JSON."""
    started, busy0, own0 = start
    run_s = time.monotonic() - started
    busy, own = machine_busy_s() - busy0, own_cpu_s()
    others = max(0.0, busy - (own - own0)) if own is not None and own0 is not None else 0.0
    systemd = subprocess.run(
        ["systemctl", "--version"], capture_output=True, text=True, check=False
    )
    meta: dict[str, Any] = {
        "mode": mode,
        "finished": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "cores": ctx.cores,
        "memory_gib": psutil.virtual_memory().total / 2**30,
        "systemd": systemd.stdout.split()[1] if systemd.stdout else "?",
        "versions": _versions(),
        "run_s": run_s,
        "others_cpu_s": others,
        "others_cpu_share": others / (run_s * ctx.cores),
        "reps": ctx.reps,
        "command": "packaging/bench.sh" + (" --quick" if args.quick else ""),
    }
    table = render(results, rows, meta)
    print(table)
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
        path = RESULTS / f"{stamp}-{mode}.json"
        data = to_json(results, rows, meta)
        data["table"] = table
        path.write_text(json.dumps(data, indent=1, default=str) + "\n")
        log(f"wrote {path.relative_to(TOP)}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, N=10 only")
    parser.add_argument(
        "--only", default="", help="comma-separated row keys (e.g. a0,a,b), run in either mode"
    )
    parser.add_argument("--no-save", action="store_true", help="print only; write no JSON")
    parser.add_argument(
        "--render", metavar="JSON", help="print the table of a results file again (no run)"
    )
    args = parser.parse_args(argv)
    if args.render:
        return render_again(Path(args.render))
    if os.geteuid() != 0 or Path("/proc/1/comm").read_text().strip() != "systemd":
        print("run inside packaging/testbed as root: packaging/bench.sh does", file=sys.stderr)
        return 2
    mode = "quick" if args.quick else "full"
    only = {key.strip() for key in args.only.split(",") if key.strip()}
    # A row named with --only runs in either mode (e.g. a full run's row checked with --quick).
    rows = [r for r in ROWS if (r.key in only if only else mode in r.modes)]
    unknown = only - {r.key for r in ROWS}
    if unknown:
        print(f"no such rows: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    rows.sort(key=lambda r: SECTIONS.index(r.section))  # stable: rows keep their order within
    started, busy0, own0 = time.monotonic(), machine_busy_s(), own_cpu_s()
    ctx = Context(mode, log)
    ctx.only = only
    results: dict[str, Result] = {}

    def interrupt(signum: int, _frame: object) -> None:
        raise Interrupted(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, interrupt)
    try:
        try:
            run_rows(rows, ctx, log, results)
        except Interrupted:
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, signal.SIG_IGN)  # the testbed's power-off signals again
            for r in rows:
                results.setdefault(r.key, Result(status="error: the run was interrupted"))
            # Saved before the clean-up: the testbed SIGKILLs what still runs 5 s after SIGTERM.
            finish(results, rows, ctx, args, mode, (started, busy0, own0))
            return 130
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)  # a second signal must not stop the clean-up
        log("tearing down: sessions, hubs, hostd, users")
        ctx.close()
    finish(results, rows, ctx, args, mode, (started, busy0, own0))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
