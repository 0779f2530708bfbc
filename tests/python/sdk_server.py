"""A small MCP server built on the official Python SDK, for mcp-edge's end-to-end tests.

Usage: python sdk_server.py --transport {streamable-http,sse} --port N [--host 127.0.0.1]

Tools: ``echo`` {text}, ``add`` {a, b} and ``countdown`` {from, interval_ms}, which reports
one progress notification per tick. Prints ``READY <port>`` on stdout once uvicorn accepts
connections (``--port 0`` picks a free port). Works with ``mcp`` 1.x (``FastMCP``) and 2.x
(``MCPServer``).
"""

from __future__ import annotations

import argparse
import inspect
import socket
import sys
from typing import Annotated, Any

import anyio
import uvicorn
from pydantic import Field

try:  # mcp >= 2
    from mcp.server.mcpserver import Context
    from mcp.server.mcpserver import MCPServer as Server
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import Context
    from mcp.server.fastmcp import FastMCP as Server


def format_number(value: float) -> str:
    """Render a sum the way the Rust demo server does: ``5`` rather than ``5.0``."""
    return str(int(value)) if float(value).is_integer() else repr(value)


def _countdown_signature(
    ctx: Context,
    start: Annotated[int, Field(alias="from", ge=0, le=1000)] = 3,
    interval_ms: Annotated[int, Field(ge=0, le=60_000)] = 200,
) -> str:
    """The signature the SDK reads for `countdown`: its schema has `from` and `interval_ms`."""
    raise NotImplementedError


async def countdown(ctx: Context, **arguments: Any) -> str:
    """Count down from `from`, reporting one progress notification per tick."""
    start, interval_ms = arguments["from"], arguments["interval_ms"]
    for tick in range(1, start + 1):
        await anyio.sleep(interval_ms / 1000)
        await ctx.report_progress(tick, start, f"{start - tick} left")
    return "liftoff"


# `from` is a Python keyword: the SDK builds the schema from the signature it is shown and
# calls the tool with the wire names as keywords, hence **arguments behind a borrowed signature.
countdown.__signature__ = inspect.signature(_countdown_signature)  # type: ignore[attr-defined]


def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


def add(a: float, b: float) -> str:
    """Return the sum of a and b."""
    return format_number(a + b)


def build_server() -> Server:
    """Create the server with its three tools."""
    server = Server("mcp-edge-sdk-test-server")
    for tool in (echo, add, countdown):
        server.tool()(tool)
    return server


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=["streamable-http", "sse"], required=True)
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    return parser.parse_args(argv)


async def serve_app(app: Any, host: str, port: int) -> None:
    """Bind, start uvicorn on the bound socket, and announce `READY <port>` once it is
    started (port 0 picks a free one). Shared by every test server here."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    http = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))

    async def announce() -> None:
        while not http.started:
            await anyio.sleep(0.01)
        print(f"READY {bound}", flush=True)

    async with anyio.create_task_group() as tg:
        tg.start_soon(announce)
        await http.serve(sockets=[sock])
        tg.cancel_scope.cancel()


async def serve(args: argparse.Namespace) -> None:
    """Serve the SDK server on the requested transport."""
    server = build_server()
    app = server.streamable_http_app() if args.transport == "streamable-http" else server.sse_app()
    await serve_app(app, args.host, args.port)


def main(argv: list[str]) -> None:
    anyio.run(serve, parse_args(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
