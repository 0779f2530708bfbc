"""The official Python SDK client (2.x) for mcp-edge's policy tests.

Usage: python policy_client.py --url URL [--mode {legacy,auto}] [--call TOOL]

Lists the tools (every page) and prints one JSON line: ``{"tools": [...], "protocol": V}``;
with ``--call TOOL`` it calls the tool too and adds ``"call": {"text": ...}`` or
``"call": {"error": {"code": C, "message": M}}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import Any

import anyio

warnings.simplefilter("ignore", DeprecationWarning)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with anyio.fail_after(30):
        return await exercise(args)


async def exercise(args: argparse.Namespace) -> dict[str, Any]:
    from mcp import Client

    async with Client(args.url, mode=args.mode) as client:
        tools = sorted(tool.name for tool in (await client.list_tools()).tools)
        summary: dict[str, Any] = {"tools": tools, "protocol": client.protocol_version}
        if args.call:
            try:
                result = await client.call_tool(args.call, {})
                summary["call"] = {"text": result.content[0].text}
            except Exception as error:  # noqa: BLE001 - the SDK's JSON-RPC error, by any name
                data = getattr(error, "error", error)
                code = getattr(data, "code", None)
                summary["call"] = {"error": {"code": code, "message": str(getattr(data, "message", error))}}
        return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", choices=["legacy", "auto"], default="auto")
    parser.add_argument("--call")
    args = parser.parse_args()
    summary = anyio.run(run, args)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
