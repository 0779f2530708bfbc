"""The SDK test server on the legacy SSE transport, compressing every response with gzip
whatever the client asked for, as IBM's ContextForge does for `GET /sse`.

Usage: python gzip_sse_server.py --port N [--host 127.0.0.1]

Each body chunk is compressed and flushed at once (`Z_SYNC_FLUSH`), so events still reach
the client as they are written. Prints ``READY <port>`` like ``sdk_server.py``.
"""

from __future__ import annotations

import argparse
import sys
import zlib
from typing import Any

import anyio

from sdk_server import build_server, serve_app


def gzip_always(app: Any) -> Any:
    """ASGI middleware: every HTTP response body gzip-encoded, flushed per chunk."""

    async def wrapped(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        compressor = zlib.compressobj(6, zlib.DEFLATED, 31)

        async def compressing_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != b"content-length"
                ]
                headers.append((b"content-encoding", b"gzip"))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                body = compressor.compress(message.get("body", b""))
                if message.get("more_body", False):
                    body += compressor.flush(zlib.Z_SYNC_FLUSH)
                else:
                    body += compressor.flush(zlib.Z_FINISH)
                message = {**message, "body": body}
            await send(message)

        await app(scope, receive, compressing_send)

    return wrapped


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    app = gzip_always(build_server().sse_app())
    anyio.run(serve_app, app, args.host, args.port)


if __name__ == "__main__":
    main(sys.argv[1:])
