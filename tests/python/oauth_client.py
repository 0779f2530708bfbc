"""The official Python SDK's OAuth client (2.x) through mcp-edge.

The first request gets 401; the SDK's ``OAuthClientProvider`` reads the protected resource
metadata the 401 points to (served by the edge), the authorization server's metadata, and
runs the authorization code flow with PKCE and the resource indicator; a scripted user agent
follows the authorization server's redirects (``oidc-provider`` logs in and consents by
itself) to the code. Then the client lists the tools and calls two: ``echo`` (allowed) and
``admin_reset`` (its token lacks mcp:admin: refused by the edge).

Usage: python oauth_client.py URL

The SDK answers the edge's 403 (``insufficient_scope``) with a step-up authorization for
mcp:admin, which the authorization server declines.

Prints one JSON line: ``{first_status, challenge, metadata, authorization_url, step_ups,
mcp_statuses, tools, echo, admin_error, token_aud, token_scope}``.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import warnings
from typing import Any
from urllib.parse import parse_qs, urljoin, urlparse

import anyio
import httpx2

warnings.simplefilter("ignore", DeprecationWarning)

REDIRECT = "http://127.0.0.1:1/callback"
CLIENT_ID = "mcp-e2e"


async def user_agent(start: str) -> dict[str, str]:
    """Follows redirects by hand, keeping cookies, until the client's redirect URI: its query
    (``code``, ``state``, ``iss``; or ``error`` when the authorization server declined)."""
    cookies: dict[str, str] = {}
    url = start
    async with httpx2.AsyncClient(follow_redirects=False, trust_env=False) as http:
        for _ in range(20):
            if url.startswith(REDIRECT):
                query = {name: values[0] for name, values in parse_qs(urlparse(url).query).items()}
                if "code" not in query and "error" not in query:
                    raise RuntimeError(f"neither code nor error in {url}")
                return query
            headers = {"cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {}
            response = await http.get(url, headers=headers)
            for line in response.headers.get_list("set-cookie"):
                name, _, value = line.split(";", 1)[0].partition("=")
                cookies[name.strip()] = value
            location = response.headers.get("location")
            if not location:
                raise RuntimeError(f"{response.status_code} without a redirect at {url}: {response.text}")
            url = urljoin(url, location)
    raise RuntimeError("too many redirects")


class Declined(Exception):
    """The authorization server declined an authorization (``error`` at the redirect URI)."""


class Storage:
    """The SDK's `TokenStorage`, in memory, with the pre-registered public client."""

    def __init__(self) -> None:
        from mcp.shared.auth import OAuthClientInformationFull

        self.tokens: Any = None
        self.client = OAuthClientInformationFull(
            client_id=CLIENT_ID,
            redirect_uris=[REDIRECT],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        )

    async def get_tokens(self) -> Any:
        return self.tokens

    async def set_tokens(self, tokens: Any) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> Any:
        return self.client

    async def set_client_info(self, client_info: Any) -> None:
        self.client = client_info


def describe(error: BaseException) -> str:
    """An error's type and message, through exception groups."""
    inner = getattr(error, "exceptions", None)
    if inner:
        return "; ".join(describe(e) for e in inner)
    return f"{type(error).__name__}: {error}"


def claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


async def run(url: str) -> dict[str, Any]:
    with anyio.fail_after(60):
        return await exercise(url)


async def exercise(url: str) -> dict[str, Any]:
    from mcp import Client
    from mcp.client.auth import OAuthClientProvider
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client
    from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata

    async with httpx2.AsyncClient(trust_env=False) as http:
        first = await http.post(
            url,
            headers={"content-type": "application/json", "accept": "application/json, text/event-stream"},
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        )
        challenge = first.headers.get("www-authenticate", "")
        found = re.search(r'resource_metadata="([^"]+)"', challenge)
        metadata = (await http.get(found.group(1))).json() if found else None

    # Every authorization the SDK started: its URL and where the user agent ended.
    authorizations: list[dict[str, Any]] = []

    async def redirect_handler(authorization_url: str) -> None:
        query = await user_agent(authorization_url)
        authorizations.append({"url": authorization_url, "query": query})

    async def callback_handler() -> AuthorizationCodeResult:
        query = authorizations[-1]["query"]
        if "error" in query:
            raise Declined(query["error"])
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))

    # The status of every response from the MCP endpoint, in order.
    statuses: list[int] = []

    async def record(response: httpx2.Response) -> None:
        if str(response.request.url) == url:
            statuses.append(response.status_code)

    storage = Storage()
    provider = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name="mcp-edge e2e (Python)",
            redirect_uris=[REDIRECT],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    async with create_mcp_http_client(auth=provider) as http_client:
        http_client.event_hooks["response"].append(record)
        transport = streamable_http_client(url, http_client=http_client)
        done: dict[str, Any] = {}
        try:
            async with Client(transport, mode="legacy") as client:
                done["tools"] = sorted(tool.name for tool in (await client.list_tools()).tools)
                done["echo"] = (await client.call_tool("echo", {"text": "hello"})).content[0].text
                await client.call_tool("admin_reset", {})
        except Exception as error:  # noqa: BLE001 - the SDK's error for the refusal, by any name
            # The declined step-up leaves the transport's task group, ending the session.
            if "echo" not in done:
                raise
            done["admin_error"] = describe(error)
    payload = claims(storage.tokens.access_token)
    return {
        "first_status": first.status_code,
        "challenge": challenge,
        "metadata": metadata,
        "authorization_url": authorizations[0]["url"],
        "step_ups": [
            {"scope": parse_qs(urlparse(a["url"]).query).get("scope", [""])[0], "error": a["query"].get("error")}
            for a in authorizations[1:]
        ],
        "mcp_statuses": statuses,
        "tools": done["tools"],
        "echo": done["echo"],
        "admin_error": done.get("admin_error"),
        "token_aud": payload.get("aud"),
        "token_scope": payload.get("scope"),
    }


def main() -> None:
    summary = anyio.run(run, sys.argv[1])
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
