"""The official SDK's test servers as one ASGI app for gunicorn with uvicorn workers.

Usage (from tests/python, or with ``--chdir tests/python``)::

    gunicorn -k uvicorn.workers.UvicornWorker --workers 1 --graceful-timeout 5 \\
        --pid /run/gunicorn-a.pid --bind 127.0.0.1:PORT gunicorn_app:app

One MCP server (mcp 2.x ``MCPServer``, or 1.x ``FastMCP``) with the tools of
``sdk_server.py`` (``echo``, ``add``, ``countdown``) and of ``spin_server.py`` (``finite``,
``forever``: they swallow cancellation), on both HTTP transports at once:

- streamable HTTP at ``/mcp``: session-based (``initialize``, ``Mcp-Session-Id``); the 2.x
  app also answers the stateless 2026-07-28 POSTs of a client in ``auto`` mode;
- legacy HTTP+SSE at ``/sse`` and ``/messages/``.

Sessions live in the worker's memory, so run one worker per master: put several masters
behind mcp-edge (one upstream server each, with affinity) to scale out. ``kill -HUP`` on the
master starts a fresh worker and sends SIGTERM to the old one; the listening socket stays
open (connections wait in its backlog while the new worker starts). gunicorn 27 does not
kill an old worker at ``--graceful-timeout`` after a HUP (that bounds the master's own
shutdown): an old worker stuck in a handler (``forever``) lives until its heartbeat has
been silent for ``--timeout`` seconds (uvicorn stops it once it shuts down), then the
master kills it. ``--timeout 5`` bounds it; ``--preload`` makes a new worker a cheap fork
of the master instead of a fresh import of the SDK (about 1 CPU-second per recycle).
"""

from __future__ import annotations

from typing import Any

from sdk_server import build_server
from spin_server import finite, forever

SSE_PREFIXES = ("/sse", "/messages")


def build_app() -> Any:
    """The ASGI app: `/sse` and `/messages/` to the legacy SSE app, the rest to the
    streamable HTTP app, whose lifespan (its session manager) is the app's lifespan."""
    server = build_server()
    for tool in (finite, forever):
        server.tool()(tool)
    streamable = server.streamable_http_app()
    sse = server.sse_app()

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and scope["path"].startswith(SSE_PREFIXES):
            await sse(scope, receive, send)
        else:
            await streamable(scope, receive, send)

    return app


app = build_app()
