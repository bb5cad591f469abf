"""The hub's plain-HTTP front in ACME mode: HTTP-01 answers and a redirect to HTTPS (api layer).

A second, tiny ASGI app served on ``http_port`` beside the hub (hostd.api.hub.server): it
answers ``/.well-known/acme-challenge/<token>`` from a ``ChallengeStore`` the ACME client fills
(RFC 8555 §8.3), and sends every other request to the same path over HTTPS with a 301, on the
host it asked for when that is one of ``acme_domains`` (else the first: a forged Host header
redirects nowhere else).
Until the first certificate is there, those get a 503 that says so instead: there is no HTTPS
to go to yet. It must never serve the hub itself over plain HTTP: a password would cross the
network in clear.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Final

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import Receive, Scope, Send

__all__ = ["CHALLENGE_PREFIX", "ChallengeStore", "HttpFront"]

CHALLENGE_PREFIX: Final = "/.well-known/acme-challenge/"
PENDING_RETRY_S: Final = 30


class ChallengeStore:
    """Tokens and their key authorizations: written by the ACME client's thread, read by the
    event loop, hence the lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[str, str] = {}

    def put(self, token: str, key_authorization: str) -> None:
        with self._lock:
            self._answers[token] = key_authorization

    def remove(self, token: str) -> None:
        with self._lock:
            self._answers.pop(token, None)

    def get(self, token: str) -> str | None:
        with self._lock:
            return self._answers.get(token)


class HttpFront:
    """The ASGI app of the HTTP listener. ``domains``: the certificate's names (not empty);
    ``https_port`` goes into redirects unless it is 443; ``ready()``: HTTPS serves yet."""

    def __init__(
        self,
        challenges: ChallengeStore,
        *,
        domains: tuple[str, ...],
        https_port: int,
        ready: Callable[[], bool],
    ) -> None:
        if not domains:
            raise ValueError("HttpFront needs the certificate's names")
        self.challenges = challenges
        self.domains = domains
        self.https_port = https_port
        self.ready = ready

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # websocket: refused (uvicorn answers 403); lifespan: none
            return
        response = self.answer(Request(scope, receive))
        await response(scope, receive, send)

    def answer(self, request: Request) -> Response:
        path = request.url.path
        if path.startswith(CHALLENGE_PREFIX) and request.method in ("GET", "HEAD"):
            answer = self.challenges.get(path[len(CHALLENGE_PREFIX) :])
            if answer is None:
                return PlainTextResponse("no such challenge\n", status_code=404)
            return PlainTextResponse(answer)
        if not self.ready():
            return PlainTextResponse(
                "The hub is getting its HTTPS certificate; try again in a minute.\n",
                status_code=503,
                headers={"Retry-After": str(PENDING_RETRY_S)},
            )
        asked = (request.url.hostname or "").lower()
        host = asked if asked in self.domains else self.domains[0]
        port = "" if self.https_port == 443 else f":{self.https_port}"
        # The path as sent (percent-encoding kept), never a second host: it starts with "/".
        raw = request.scope.get("raw_path") or path.encode()
        target = "/" + raw.decode("latin-1").lstrip("/")
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"https://{host}{port}{target}{query}", status_code=301)
