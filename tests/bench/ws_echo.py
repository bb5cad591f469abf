"""A lean server on a Unix socket: the upstream of the "proxy ws" and "proxy small lean" rows
(bench_proxy).

Run as a session's command (``python ws_echo.py {SOCKET}``, or ``--port {PORT}`` on loopback:
the small-GET row's "direct", since wrk speaks TCP only): every WebSocket upgrade is
accepted (RFC 6455 4.2.2: Sec-WebSocket-Accept from the key) and every data frame comes back
as it came (text or binary, unmasked as a server sends it); pings get pongs, a close gets its
close. Any other request gets ``200 ok`` on a kept-alive connection (hostd's readiness check,
the small GETs). Requests are parsed by httptools and frames unmasked for real (websockets'
C ``apply_mask``): an honest server, made lean on purpose so that the rows measure the
proxies in front of it, not this server (JupyterLab answers about 2,400 small GETs a second
on this machine kind: as fast as the hub passes them on). Not used by hostd itself.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import sys

import httptools
import uvloop
from websockets.speedups import apply_mask

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok"


def _header(opcode_byte: int, size: int) -> bytes:
    if size < 126:
        return bytes((opcode_byte, size))
    if size < 65536:
        return bytes((opcode_byte, 126)) + size.to_bytes(2, "big")
    return bytes((opcode_byte, 127)) + size.to_bytes(8, "big")


class Echo(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser: httptools.HttpRequestParser | None = httptools.HttpRequestParser(self)
        self.key = b""
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    # -- the handshake (httptools' callbacks) ---------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"sec-websocket-key":
            self.key = value.strip()

    def on_message_complete(self) -> None:
        if self.parser is not None and not self.parser.should_upgrade():
            assert self.transport is not None
            self.transport.write(_OK)

    def data_received(self, data: bytes) -> None:
        if self.parser is not None:
            try:
                self.parser.feed_data(data)
                return
            except httptools.HttpParserUpgrade as upgrade:
                data = data[upgrade.args[0] :]
            except httptools.HttpParserError:
                assert self.transport is not None
                self.transport.close()
                return
            accept = base64.b64encode(hashlib.sha1(self.key + _GUID).digest())  # noqa: S324
            assert self.transport is not None
            self.transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n"
                b"connection: Upgrade\r\nsec-websocket-accept: " + accept + b"\r\n\r\n"
            )
            self.parser = None
        self.frames(self.buffer + data if self.buffer else data)

    # -- frames -----------------------------------------------------------------------------

    def frames(self, data: bytes) -> None:
        out: list[bytes] = []
        at, size = 0, len(data)
        while size - at >= 2:
            first, second = data[at], data[at + 1]
            length, head = second & 0x7F, 2
            if length >= 126:
                head = 4 if length == 126 else 10
                if size - at < head:
                    break
                length = int.from_bytes(data[at + 2 : at + head], "big")
            masked = second & 0x80
            if masked:
                head += 4
            if size - at < head + length:
                break
            payload = data[at + head : at + head + length]
            if masked:
                payload = apply_mask(payload, data[at + head - 4 : at + head])
            opcode = first & 0x0F
            if opcode == 0x9:  # ping: pong
                out += [_header(0x8A, length), payload]
            elif opcode == 0x8:  # close: its close, then the end
                out += [_header(0x88, length), payload]
                assert self.transport is not None
                self.transport.write(b"".join(out))
                self.transport.close()
                return
            elif opcode != 0xA:  # data (text, binary, continuation): back as it came
                out += [_header(first, length), payload]
            at += head + length
        self.buffer = data[at:]
        if out:
            assert self.transport is not None
            self.transport.write(b"".join(out))


async def main(argv: list[str]) -> None:
    loop = asyncio.get_running_loop()
    if argv[0] == "--port":
        server = await loop.create_server(Echo, "127.0.0.1", int(argv[1]))
    else:
        server = await loop.create_unix_server(Echo, argv[0])
        # As jupyter's sock_mode: the proxy group's to connect to.
        os.chmod(argv[0], 0o660)  # noqa: PTH101
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main(sys.argv[1:]))
