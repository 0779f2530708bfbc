// The official TypeScript SDK client's OAuth flow through mcp-edge: the first request gets
// 401; the SDK reads the protected resource metadata the 401 points to (served by the
// edge), the authorization server's metadata, and runs the authorization code flow with
// PKCE and the resource indicator; a scripted user agent follows the authorization
// server's redirects (it logs in and consents by itself) to the code. Then the client
// connects again with the token, lists the tools and calls two: `echo` (allowed) and
// `admin_reset` (its token lacks mcp:admin: refused by the edge).
//
// Prints one JSON line: {first_status, metadata, tools, echo, admin_error, token_aud,
// token_scope}.
//
// Usage: node oauth_client.cjs <url>   (NODE_PATH holds @modelcontextprotocol/sdk)
'use strict';

const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = require('@modelcontextprotocol/sdk/client/streamableHttp.js');
const { UnauthorizedError } = require('@modelcontextprotocol/sdk/client/auth.js');

const url = new URL(process.argv[2]);
const REDIRECT = 'http://127.0.0.1:1/callback';

/** Follows redirects by hand, keeping cookies, until the client's redirect URI. */
async function userAgent(start) {
  const cookies = new Map();
  let next = new URL(start);
  for (let hop = 0; hop < 20; hop += 1) {
    if (next.href.startsWith(REDIRECT)) {
      const code = next.searchParams.get('code');
      if (!code) throw new Error(`no code in ${next.href}`);
      return code;
    }
    const cookie = [...cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    const res = await fetch(next, { redirect: 'manual', headers: cookie ? { cookie } : {} });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1));
    }
    const location = res.headers.get('location');
    if (!location) throw new Error(`${res.status} without a redirect at ${next.href}: ${await res.text()}`);
    next = new URL(location, next);
  }
  throw new Error('too many redirects');
}

class Provider {
  constructor() {
    this.saved = {};
  }
  get redirectUrl() { return REDIRECT; }
  get clientMetadata() {
    return {
      client_name: 'mcp-edge e2e',
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation() { return { client_id: 'mcp-e2e' }; }
  saveClientInformation() {}
  tokens() { return this.saved.tokens; }
  saveTokens(tokens) { this.saved.tokens = tokens; }
  async redirectToAuthorization(authorizationUrl) {
    this.saved.authorizationUrl = authorizationUrl.href;
    this.saved.code = await userAgent(authorizationUrl);
  }
  saveCodeVerifier(verifier) { this.saved.verifier = verifier; }
  codeVerifier() { return this.saved.verifier; }
}

async function main() {
  const first = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
  });
  const challenge = first.headers.get('www-authenticate') || '';
  const metadataUrl = /resource_metadata="([^"]+)"/.exec(challenge)?.[1];
  const metadata = metadataUrl ? await (await fetch(metadataUrl)).json() : null;

  const provider = new Provider();
  let transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
  let client = new Client({ name: 'oauth-e2e', version: '1.0.0' });
  try {
    await client.connect(transport);
    throw new Error('connected without a token');
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
  }
  await transport.finishAuth(provider.saved.code);
  transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
  client = new Client({ name: 'oauth-e2e', version: '1.0.0' });
  await client.connect(transport);
  const tools = (await client.listTools()).tools.map((tool) => tool.name).sort();
  const echo = await client.callTool({ name: 'echo', arguments: { text: 'hello' } });
  let adminError = null;
  try {
    await client.callTool({ name: 'admin_reset', arguments: {} });
  } catch (error) {
    adminError = String(error.message || error);
  }
  const payload = JSON.parse(
    Buffer.from(provider.saved.tokens.access_token.split('.')[1], 'base64url').toString(),
  );
  await client.close();
  process.stdout.write(`${JSON.stringify({
    first_status: first.status,
    challenge,
    metadata,
    authorization_url: provider.saved.authorizationUrl,
    tools,
    echo: echo.content[0].text,
    admin_error: adminError,
    token_aud: payload.aud,
    token_scope: payload.scope,
  })}\n`);
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
