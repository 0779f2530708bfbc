"""An MCP server whose tools swallow cancellation, for mcp-edge's spin-loop experiment.

Usage: python spin_server.py --transport {streamable-http,sse} --port N [--stateless]

Tools (both report one progress notification as soon as they start, so a client knows
the call is running):

- ``finite`` {seconds=2}: does ``seconds`` of work in short steps. A step interrupted by
  cancellation is swallowed and retried, the way a handler with ``except BaseException:
  continue`` (or an SDK task parked on a stream) behaves. Left alone it returns after
  ``seconds``; once cancelled, every step is interrupted at once and anyio's cancel scope
  re-delivers the cancellation on every event-loop cycle (``_deliver_cancellation`` ->
  ``call_soon``, anyio#695): the process spins at ~100% CPU and the work never completes.
- ``forever``: the same loop with no end. Nothing outside the process can stop it.

``--stateless`` serves streamable HTTP with ``stateless_http=True`` (no sessions). The
2.x SDK's streamable HTTP app also answers the stateless 2026-07-28 POSTs of a client in
``auto`` mode either way. Prints ``READY <port>`` once uvicorn accepts connections. Works
with ``mcp`` 1.x (``FastMCP``) and 2.x (``MCPServer``).
"""

from __future__ import annotations

import argparse
import sys
import time

import anyio

try:  # mcp >= 2
    from mcp.server.mcpserver import Context
    from mcp.server.mcpserver import MCPServer as Server
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import Context
    from mcp.server.fastmcp import FastMCP as Server

from sdk_server import serve_app

STEP_SECONDS = 0.05


async def work(ctx: Context, seconds: float) -> str:
    """Do `seconds` of uninterrupted work, retrying every step that cancellation cut."""
    try:
        await ctx.report_progress(0, seconds, "started")
    except BaseException:  # noqa: BLE001 - the point of the tool: nothing stops it
        pass
    done = 0.0
    while done < seconds:
        started = time.monotonic()
        try:
            await anyio.sleep(STEP_SECONDS)
        except BaseException:  # noqa: BLE001 - swallowed CancelledError, retried
            continue
        done += time.monotonic() - started
    return f"finished after {seconds} s of work"


async def finite(ctx: Context, seconds: float = 2.0) -> str:
    """Work for `seconds` (default 2), swallowing cancellation; returns when done."""
    return await work(ctx, seconds)


async def forever(ctx: Context) -> str:
    """Work forever, swallowing cancellation; never returns."""
    return await work(ctx, float("inf"))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=["streamable-http", "sse"], required=True)
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--stateless", action="store_true", help="stateless_http=True")
    return parser.parse_args(argv)


def build_app(args: argparse.Namespace):
    """The Starlette app of the chosen transport."""
    server = Server("mcp-edge-spin-server")
    for tool in (finite, forever):
        server.tool()(tool)
    if args.transport == "sse":
        return server.sse_app()
    try:  # 2.x takes the option here
        return server.streamable_http_app(stateless_http=args.stateless)
    except TypeError:  # 1.x reads it from the settings
        server.settings.stateless_http = args.stateless
        return server.streamable_http_app()


async def serve(args: argparse.Namespace) -> None:
    """Serve the spin tools on the requested transport."""
    await serve_app(build_app(args), args.host, args.port)


if __name__ == "__main__":
    anyio.run(serve, parse_args(sys.argv[1:]))
