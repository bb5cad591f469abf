"""A session command for the real-host tier: a JupyterLab stand-in with kernels.

Runs as the session's user: ``kernels_probe.py PORT``. It reads ~/.hostd-probe.json and starts
``kernels`` children (plain Python processes, as a JupyterLab starts ipykernels); the one
numbered ``hog_kernel`` allocates ``hog_mib`` MiB after ``hog_after_s`` seconds. It serves
HTTP on 127.0.0.1:PORT, where GET /report answers how each kernel is (pid, returncode: None
while it runs, -9 once SIGKILLed) and, for each ``connect`` entry [host, port], what a TCP
connect from inside the session gives ("ok", an errno name such as "EPERM", or "timeout"),
and for each ``send`` entry what sending one UDP datagram there gives ("ok" or an errno name).
systemd's IPAddressDeny= drops a denied packet as it leaves: a UDP send fails at once with
EPERM, while a TCP connect only waits (its SYN is dropped and retried) until it times out.
"""

import errno
import json
import os
import socket
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

KERNELS: list[subprocess.Popen[bytes]] = []


def load_plan() -> dict[str, object]:
    try:
        return json.loads((Path.home() / ".hostd-probe.json").read_text())
    except (OSError, ValueError):
        return {}


def kernel(number: int) -> None:
    plan = load_plan()
    if plan.get("hog_kernel") == number:
        time.sleep(float(plan.get("hog_after_s", 1)))
        hog = b"x" * (int(plan["hog_mib"]) * 1024 * 1024)
        print(f"kernel {number} allocated {len(hog) >> 20} MiB", flush=True)
    while True:
        time.sleep(3600)


def attempt_connect(host: str, port: int) -> str:
    try:
        with socket.create_connection((host, port), timeout=5):
            return "ok"
    except TimeoutError:
        return "timeout"
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, type(exc).__name__)


def attempt_send(host: str, port: int) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(b"hostd probe", (host, port))
        except OSError as exc:
            return errno.errorcode.get(exc.errno or 0, type(exc).__name__)
    return "ok"


def report() -> dict[str, object]:
    plan = load_plan()
    connects = plan.get("connect", [])
    return {
        "main_pid": os.getpid(),
        "kernels": [{"pid": k.pid, "returncode": k.poll()} for k in KERNELS],
        "connect": {f"{host}:{port}": attempt_connect(host, port) for host, port in connects},
        "send": {f"{host}:{port}": attempt_send(host, port) for host, port in plan.get("send", [])},
    }


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


def main() -> None:
    if sys.argv[1] == "--kernel":
        kernel(int(sys.argv[2]))
        return
    plan = load_plan()
    for number in range(int(plan.get("kernels", 0))):
        KERNELS.append(subprocess.Popen([sys.executable, __file__, "--kernel", str(number)]))
    HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()


if __name__ == "__main__":
    main()
