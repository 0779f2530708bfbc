"""Drive an MCP server with the official Python SDK client, for mcp-edge's end-to-end tests.

Usage: python sdk_client.py --transport {streamable-http,sse} --url URL [--mode {legacy,auto}]

Initializes, lists tools, calls ``add`` (a=2, b=3) (and again after ``--idle`` seconds of
silence, when given) and ``countdown`` (from=3) while counting its progress notifications,
pings, and prints one JSON line on stdout:

    {"tools": [...sorted names], "add": "5", "progress": 3, "ping": true, "sdk": "2.3.0",
     "protocol": "2025-11-25"}

Any failure exits non-zero with a traceback; the whole run is bounded by 30 s. Works with
``mcp`` 2.x (``mcp.Client``) and 1.x (``ClientSession`` over ``streamablehttp_client`` or
``sse_client``). ``--mode`` is passed to ``mcp.Client`` on 2.x: ``legacy`` (the default here)
always does the ``initialize`` handshake; ``auto`` (the SDK's own default) first probes
``server/discover`` and may settle on the stateless 2026-07-28 protocol, where ``ping`` no
longer exists and is reported as ``null``.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import sys
import warnings
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any, AsyncIterator

import anyio

TIMEOUT_SECONDS = 30
SDK_VERSION = version("mcp")
SDK_MAJOR = int(SDK_VERSION.split(".")[0])

# The SDK marks `ping` and the older transport names deprecated; this script tests them.
warnings.simplefilter("ignore", DeprecationWarning)
try:
    from mcp import MCPDeprecationWarning  # mcp >= 2

    warnings.simplefilter("ignore", MCPDeprecationWarning)
except ImportError:
    pass


@asynccontextmanager
async def connect_v1(transport: str, url: str) -> AsyncIterator[Any]:
    """Yield an initialized mcp 1.x `ClientSession`, the protocol version and `True`."""
    from mcp import ClientSession

    if transport == "sse":
        from mcp.client.sse import sse_client

        opened = sse_client(url)
    else:
        from mcp.client import streamable_http

        # `streamable_http_client` appeared in 1.2x; `streamablehttp_client` is the older name.
        client = getattr(streamable_http, "streamable_http_client", None)
        opened = client(url) if client else streamable_http.streamablehttp_client(url)

    async with opened as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write) as session:
            result = await session.initialize()
            yield session, result.protocolVersion, True


@asynccontextmanager
async def connect_v2(transport: str, url: str, mode: str) -> AsyncIterator[Any]:
    """Yield an entered mcp 2.x `Client`, the protocol version and whether it was reached
    through the `initialize` handshake (else through `server/discover`, the stateless era)."""
    from mcp import Client

    if transport == "sse":
        from mcp.client.sse import sse_client

        server: Any = sse_client(url)
    else:
        server = url
    async with Client(server, mode=mode) as client:
        # `auto` settles either on the handshake or on a `server/discover` result.
        handshake = getattr(client.session, "discover_result", None) is None
        yield client, client.protocol_version, handshake


def text_of(result: Any) -> str:
    """The first text block of a successful `CallToolResult`."""
    is_error = getattr(result, "is_error", None) or getattr(result, "isError", False)
    if is_error:
        raise RuntimeError(f"tool call failed: {result}")
    return result.content[0].text


async def exercise(transport: str, url: str, mode: str, idle: float = 0.0) -> dict[str, Any]:
    """Run the scripted session and return the summary that gets printed."""
    connect = connect_v2(transport, url, mode) if SDK_MAJOR >= 2 else connect_v1(transport, url)
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with connect as (session, protocol, handshake):
        tools = sorted(tool.name for tool in (await session.list_tools()).tools)
        added = text_of(await session.call_tool("add", {"a": 2, "b": 3}))
        if idle:
            # A silent session: its stream carries nothing (or only keepalives) meanwhile.
            await anyio.sleep(idle)
            added = text_of(await session.call_tool("add", {"a": 2, "b": 3}))
        text_of(
            await session.call_tool(
                "countdown", {"from": 3, "interval_ms": 100}, progress_callback=on_progress
            )
        )
        pinged = None
        if handshake:  # the stateless protocol has no `ping`
            await session.send_ping()
            pinged = True
    return {
        "tools": tools,
        "add": added,
        "progress": len(progress),
        "ping": pinged,
        "sdk": SDK_VERSION,
        "protocol": protocol,
    }


async def main(args: argparse.Namespace) -> None:
    with anyio.fail_after(TIMEOUT_SECONDS):
        summary = await exercise(args.transport, args.url, args.mode, args.idle)
    print(json.dumps(summary), flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=["streamable-http", "sse"], required=True)
    parser.add_argument("--url", required=True, help="e.g. http://127.0.0.1:8080/mcp or .../sse")
    parser.add_argument("--mode", choices=["legacy", "auto"], default="legacy", help="mcp 2.x only")
    parser.add_argument(
        "--idle", type=float, default=0.0, help="seconds of silence before a second `add`"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    # Backstop for a hang that cancellation cannot reach (e.g. a shielded cleanup).
    faulthandler.dump_traceback_later(TIMEOUT_SECONDS + 5, exit=True)
    anyio.run(main, parse_args(sys.argv[1:]))
