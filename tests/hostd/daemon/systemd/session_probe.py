"""A session command for hostd's systemd-tier tests: it shows the sandbox from inside.

Runs as the session's user, in place of JupyterLab: ``session_probe.py PORT``. At start it
reads ~/.hostd-probe.json (written by the test) and may print a line, allocate memory or burn
CPU; then it serves HTTP on 127.0.0.1:PORT, where GET /report answers what it sees.
"""

import json
import os
import stat
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HOGS: list[bytes] = []  # what the plan's hog allocated, held until the session ends


def attempt_write(path: str) -> str:
    try:
        Path(path).write_text("probe")
    except OSError as exc:
        return type(exc).__name__
    return "ok"


def attempt_read(path: str) -> str:
    try:
        Path(path).read_bytes()
    except OSError as exc:
        return type(exc).__name__
    return "ok"


def attempt_setuid(path: str) -> str:
    """Make a file of one's own setuid: a plain chmod outside, refused by RestrictSUIDSGID=."""
    try:
        Path(path).write_text("#!/bin/sh\n")
        Path(path).chmod(0o4755)  # the point: a setuid file
    except OSError as exc:
        return type(exc).__name__
    return "ok"


def attempt_run(argv: list[str]) -> dict[str, object]:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"rc": None, "stdout": "", "stderr": type(exc).__name__}
    return {"rc": out.returncode, "stdout": out.stdout.strip(), "stderr": out.stderr.strip()}


def block_devices() -> list[str]:
    """Every block device under /dev, by path (symlinks not followed)."""
    found = []
    for parent, dirs, files in os.walk("/dev"):
        for name in dirs + files:
            path = Path(parent, name)
            try:
                if stat.S_ISBLK(path.lstat().st_mode):
                    found.append(str(path))
            except OSError:
                pass
    return sorted(found)


def section(plan: dict[str, object], key: str) -> dict[str, Any]:
    value = plan.get(key)
    return value if isinstance(value, dict) else {}


def report() -> dict[str, object]:
    plan = load_plan()
    found: dict[str, object] = {"uid": os.getuid(), "euid": os.geteuid(), "cwd": str(Path.cwd())}
    found["tmp_write"] = attempt_write(plan.get("tmp_marker", "/tmp/probe-marker"))
    found["dev"] = sorted(p.name for p in Path("/dev").iterdir())
    for key, path in plan.get("writes", {}).items():
        found[key] = attempt_write(path)
    found["dev_block"] = block_devices()
    for key, path in section(plan, "reads").items():  # key -> "ok" or the error's class name
        found[key] = attempt_read(path)
    for key, path in section(plan, "setuid").items():
        found[key] = attempt_setuid(path)
    for key, argv in section(plan, "run").items():  # key -> {rc, stdout, stderr}
        found[key] = attempt_run(argv)
    if "suid" in plan:
        out = subprocess.run([plan["suid"], "-u"], capture_output=True, text=True, check=False)
        found["suid_euid"] = out.stdout.strip()
    token = Path(os.environ.get("JUPYTER_TOKEN_FILE", "/nonexistent"))
    try:
        found["token_readable"] = bool(token.read_text())
    except OSError:
        found["token_readable"] = False
    found["token_file_env"] = os.environ.get("JUPYTER_TOKEN_FILE")
    found["secret_env"] = os.environ.get("HOSTD_PROBE_SECRET")
    return found


def load_plan() -> dict[str, object]:
    try:
        return json.loads((Path.home() / ".hostd-probe.json").read_text())
    except (OSError, ValueError):
        return {}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(report() if self.path.endswith("/report") else {"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def burn() -> None:
    while True:
        pass


def later(plan: dict[str, Any]) -> None:
    """What the plan says to do once the session serves: hog memory, or crash."""
    if plan.get("hog_after_s") is not None:
        time.sleep(float(plan["hog_after_s"]))
        # Kept: a hog freed when this thread returns would leave nothing in memory or swap to see.
        HOGS.append(b"x" * (int(plan["hog_mib"]) * 1024 * 1024))
        print(f"allocated {len(HOGS[-1]) >> 20} MiB", flush=True)
    if plan.get("exit_after_s") is not None:
        time.sleep(float(plan["exit_after_s"]))
        print(f"crashing with exit status {plan.get('exit_code', 1)}", flush=True)
        os._exit(int(plan.get("exit_code", 1)))


def main() -> None:
    plan = load_plan()
    if "print" in plan:
        print(plan["print"], flush=True)
    if plan.get("sleep_s"):
        time.sleep(float(plan["sleep_s"]))  # so the daemon watches before anything happens
    if plan.get("hog_mib") and plan.get("hog_after_s") is None:
        hog = b"x" * (int(plan["hog_mib"]) * 1024 * 1024)  # every page written: really charged
        print(f"allocated {len(hog) >> 20} MiB", flush=True)
    if plan.get("busy"):
        threading.Thread(target=burn, daemon=True).start()
    if plan.get("exit") is not None:
        sys.exit(int(plan["exit"]))
    if plan.get("hog_after_s") is not None or plan.get("exit_after_s") is not None:
        threading.Thread(target=later, args=(plan,), daemon=True).start()
    # Threads, as JupyterLab serves connections concurrently: one connection held open must
    # not block the others (tests/hostd/daemon/systemd/test_attacks.py holds one).
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()


if __name__ == "__main__":
    main()
