"""A tiny session for the hub's load test, in place of JupyterLab: ``load_server.py SOCKET``
(a Unix socket's path, as hostd's {SOCKET}) or ``load_server.py PORT``.

Runs as the session's user (hostd starts it through a named command, [commands] in the
daemon's config). Every GET answers, in JSON, the name of the account the server runs as and
the path it was asked for, so that the test can tell that an answer came from the user's own
server. Threads and HTTP/1.1 keep-alive: the hub's proxy keeps pooled connections open.
"""

import json
import os
import pwd
import socketserver
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

USER = pwd.getpwuid(os.getuid()).pw_name


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = json.dumps({"user": USER, "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 would drop bursts of new connections


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = 128


def main() -> None:
    where = sys.argv[1]
    if where.isdigit():
        Server(("127.0.0.1", int(where)), Handler).serve_forever()
        return
    server = UnixServer(where, Handler)
    Path(where).chmod(0o660)  # the hub reaches it through the directory's group, as JupyterLab's
    server.serve_forever()


if __name__ == "__main__":
    main()
