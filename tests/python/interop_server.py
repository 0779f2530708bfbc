"""sdk_server.py with a request log, for mcp-edge's SDK interop matrix.

Usage: python interop_server.py --transport {streamable-http,sse} --port N

The same server and tools as ``sdk_server.py`` (mcp 1.x or 2.x), wrapped in an ASGI
middleware that writes one line per HTTP exchange to stderr once its response starts:

    REQ <METHOD> <PATH> <STATUS> session=<yes|no>

so a test can check which requests reached the upstream through the proxy (the
``GET`` stream, the ``DELETE`` that ends a session, stateless POSTs without a session).
Prints ``READY <port>`` on stdout once uvicorn accepts connections.
"""

from __future__ import annotations

import sys
from typing import Any

import anyio

from sdk_server import build_server, parse_args, serve_app


class RequestLog:
    """ASGI middleware: logs method, path, response status and whether a session id came."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        session = "yes" if b"mcp-session-id" in headers else "no"

        async def logged_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                line = f"REQ {scope['method']} {scope['path']} {message['status']} session={session}"
                print(line, file=sys.stderr, flush=True)
            await send(message)

        await self.app(scope, receive, logged_send)


async def serve(argv: list[str]) -> None:
    """Serve the SDK server, with every response logged, on the requested transport."""
    args = parse_args(argv)
    server = build_server()
    app = server.streamable_http_app() if args.transport == "streamable-http" else server.sse_app()
    await serve_app(RequestLog(app), args.host, args.port)


if __name__ == "__main__":
    anyio.run(serve, sys.argv[1:])
