"""Start one tool call on spin_server.py and wait to be killed, for mcp-edge's spin experiment.

Usage: python spin_client.py --transport {sse,streamable-http,stateless} --url URL
           --tool {finite,forever} [--seconds 2]

Connects with the official SDK client (``sse``: legacy HTTP+SSE; ``streamable-http``: a
session with the ``initialize`` handshake; ``stateless``: on mcp 2.x the ``auto`` mode,
which settles on the stateless 2026-07-28 POSTs against a 2.x server, on 1.x the
handshake against a ``--stateless`` server), calls the tool (``finite`` with ``seconds`` of work), prints ``CALLING`` once the
tool's first progress notification arrives (the handler is running), then waits for the
result. The experiment SIGKILLs it after ``CALLING``; left alone it prints ``RESULT <text>``.
Bounded by 60 s.
"""

from __future__ import annotations

import argparse
import faulthandler
import sys

import anyio

from sdk_client import SDK_MAJOR, connect_v1, connect_v2, text_of

TIMEOUT_SECONDS = 60


async def main(args: argparse.Namespace) -> None:
    transport = "sse" if args.transport == "sse" else "streamable-http"
    if SDK_MAJOR >= 2:
        mode = "auto" if args.transport == "stateless" else "legacy"
        connect = connect_v2(transport, args.url, mode)
    else:
        connect = connect_v1(transport, args.url)
    announced = False

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        nonlocal announced
        if not announced:
            announced = True
            print("CALLING", flush=True)

    with anyio.fail_after(TIMEOUT_SECONDS):
        async with connect as (session, _protocol, _handshake):
            arguments = {"seconds": args.seconds} if args.tool == "finite" else {}
            result = await session.call_tool(args.tool, arguments, progress_callback=on_progress)
            print(f"RESULT {text_of(result)}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=["sse", "streamable-http", "stateless"], required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--tool", choices=["finite", "forever"], required=True)
    parser.add_argument("--seconds", type=float, default=2.0, help="work of `finite`")
    faulthandler.dump_traceback_later(TIMEOUT_SECONDS + 5, exit=True)
    anyio.run(main, parser.parse_args(sys.argv[1:]))
