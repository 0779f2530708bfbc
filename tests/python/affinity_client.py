"""Many concurrent MCP sessions through one URL, for mcp-edge's session affinity tests.

Usage: python affinity_client.py --transport {streamable-http,sse} --url URL
           [--clients 20] [--calls 10]

Each client opens its own session (the ``initialize`` handshake), then calls ``add``
``--calls`` times, checking every answer. Prints one JSON line:

    {"sessions": 20, "calls_ok": 200, "errors": ["client 3: ...", ...]}

Exits 0 whatever the errors (the caller asserts on them); a run is bounded by 60 s.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import sys
import warnings

import anyio

from sdk_client import connect_v1, connect_v2, SDK_MAJOR, text_of

TIMEOUT_SECONDS = 60
warnings.simplefilter("ignore")


async def one_client(index: int, args: argparse.Namespace, report: dict) -> None:
    connect = (
        connect_v2(args.transport, args.url, "legacy")
        if SDK_MAJOR >= 2
        else connect_v1(args.transport, args.url)
    )
    try:
        async with connect as (session, _protocol, _handshake):
            report["sessions"] += 1
            for call in range(args.calls):
                answer = text_of(await session.call_tool("add", {"a": index, "b": call}))
                if answer != str(index + call):
                    raise RuntimeError(f"add({index}, {call}) answered {answer!r}")
                report["calls_ok"] += 1
    except BaseException as error:  # noqa: BLE001 - every failure is reported, not raised
        report["errors"].append(f"client {index}: {type(error).__name__}: {error}"[:300])


async def main(args: argparse.Namespace) -> None:
    report = {"sessions": 0, "calls_ok": 0, "errors": []}
    with anyio.move_on_after(TIMEOUT_SECONDS):
        async with anyio.create_task_group() as group:
            for index in range(args.clients):
                group.start_soon(one_client, index, args, report)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=["streamable-http", "sse"], required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--calls", type=int, default=10)
    faulthandler.dump_traceback_later(TIMEOUT_SECONDS + 10, exit=True)
    anyio.run(main, parser.parse_args(sys.argv[1:]))
