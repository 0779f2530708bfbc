"""The official Python SDK's server with caching hints, for the list cache benchmark
(tests/bench/list_cache.py).

Usage: python cached_list_server.py --port N [--ttl-ms 60000] [--scope public]

Serves stateless streamable HTTP at /mcp (the 2.x SDK answers 2026-07-28 POSTs with JSON)
with sixteen tools, and `Server(cache_hints=...)` puts `ttlMs`/`cacheScope` on every
`tools/list` result. `GET /count` answers how many POSTs reached the server. Prints
``READY <port>`` once uvicorn accepts connections.
"""

from __future__ import annotations

import argparse
import sys

import anyio
from mcp.server import CacheHint
from mcp.server.mcpserver import MCPServer

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from sdk_server import serve_app  # noqa: E402


def build_app(ttl_ms: int, scope: str):
    """The stateless app, wrapped in a counter of the POSTs it serves."""
    server = MCPServer(
        "mcp-edge-cached-list-server",
        cache_hints={"tools/list": CacheHint(ttl_ms=ttl_ms, scope=scope)},
    )
    for i in range(16):

        def tool(text: str, i: int = i) -> str:
            return f"{i}: {text}"

        server.tool(name=f"tool_{i:02}", description=f"Tool number {i}, echoing its text.")(tool)
    app = server.streamable_http_app(stateless_http=True)
    posts = 0

    async def counted(scope_, receive, send):
        nonlocal posts
        if scope_["type"] == "http" and scope_["path"] == "/count":
            body = str(posts).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/plain"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        if scope_["type"] == "http" and scope_["method"] == "POST":
            posts += 1
        await app(scope_, receive, send)

    return counted


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--ttl-ms", type=int, default=60000)
    parser.add_argument("--scope", default="public", choices=["public", "private"])
    args = parser.parse_args(argv)
    anyio.run(serve_app, build_app(args.ttl_ms, args.scope), args.host, args.port)


if __name__ == "__main__":
    main(sys.argv[1:])
