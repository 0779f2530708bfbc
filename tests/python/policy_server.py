"""An MCP server for mcp-edge's policy tests (tests/e2e_policy.rs).

Usage: python policy_server.py --name NAME --port N

Serves stateless streamable HTTP at /mcp (the 2.x SDK also answers the 2026-07-28
stateless POSTs) with the tools:

- ``echo`` {text}: returns ``NAME: text``, so a test sees which server answered;
- ``admin_reset``: a tool the edge hides; returns ``NAME: reset``;
- ``limited`` {seconds=0}: sleeps ``seconds``, then returns ``NAME: limited``;
- ``slow_work`` and ``busy_work`` {seconds=6}: ``seconds`` of work that swallows
  cancellation (``spin_server.work``): abandoned and cancelled, it spins;
- ``page_*``: twelve more tools, so that the SDK's list is long.

Prints ``READY <port>`` once uvicorn accepts connections.
"""

from __future__ import annotations

import argparse
import sys

import anyio

try:  # mcp >= 2
    from mcp.server.mcpserver import Context
    from mcp.server.mcpserver import MCPServer as Server
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import Context
    from mcp.server.fastmcp import FastMCP as Server

from sdk_server import serve_app
from spin_server import work


def build_app(name: str):
    """The stateless streamable HTTP app of the tools."""
    server = Server("mcp-edge-policy-server")

    def echo(text: str) -> str:
        """Return the server's name and the text."""
        return f"{name}: {text}"

    def admin_reset() -> str:
        """A tool an edge hides."""
        return f"{name}: reset"

    async def limited(seconds: float = 0.0) -> str:
        """Sleep `seconds`, then answer."""
        await anyio.sleep(seconds)
        return f"{name}: limited"

    async def slow_work(ctx: Context, seconds: float = 6.0) -> str:
        """Work `seconds`, swallowing cancellation."""
        return f"{name}: " + await work(ctx, seconds)

    async def busy_work(ctx: Context, seconds: float = 6.0) -> str:
        """Work `seconds`, swallowing cancellation."""
        return f"{name}: " + await work(ctx, seconds)

    for tool in (echo, admin_reset, limited, slow_work, busy_work):
        server.tool()(tool)
    for i in range(12):

        def page(i: int = i) -> str:
            return f"{name}: page {i}"

        server.tool(name=f"page_{i:02}", description="One of many tools.")(page)
    try:  # 2.x takes the option here
        return server.streamable_http_app(stateless_http=True)
    except TypeError:  # 1.x reads it from the settings
        server.settings.stateless_http = True
        return server.streamable_http_app()


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    await serve_app(build_app(args.name), args.host, args.port)


if __name__ == "__main__":
    anyio.run(serve, parse_args(sys.argv[1:]))
