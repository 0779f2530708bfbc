// An OAuth 2.1 authorization server for mcp-edge's auth tests: `oidc-provider` (certified
// OpenID, from npm) on 127.0.0.1 and an ephemeral port; prints `READY <port>`.
//
// - Resource indicators (RFC 8707): every resource gets JWT access tokens (ES256) whose
//   `aud` is the resource, with the scopes mcp:tools and mcp:admin.
// - The public client `mcp-e2e` (PKCE, loopback redirect) for the SDK's authorization code
//   flow; interactions are scripted: the user `alice` logs in and consents to what the
//   client asked, with no page to fill in, except mcp:admin, which alice never gets (asked
//   for mcp:admin alone, as in a step-up, she declines: `access_denied`).
// - The confidential client `svc` (client_credentials) for tokens a test asks for directly.
// - `POST /control/rotate`: a new signing key, published beside the old ones, signs from
//   now on (a key rotation; the issuer and its port stay).
//
// Usage: node oauth_as.mjs <node_modules directory>
import http from 'node:http';
import path from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { pathToFileURL } from 'node:url';

const modules = process.argv[2];
if (!modules) {
  process.stderr.write('usage: node oauth_as.mjs <node_modules directory>\n');
  process.exit(2);
}
const { default: Provider } = await import(
  pathToFileURL(path.join(modules, 'oidc-provider/lib/index.js')).href
);

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = server.address().port;
const issuer = `http://127.0.0.1:${port}`;

let generation = 0;
/** A fresh P-256 signing key as a private JWK. */
function newKey() {
  generation += 1;
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), kid: `key-${generation}`, alg: 'ES256', use: 'sig' };
}

function makeProvider(keys) {
  const provider = new Provider(issuer, {
    jwks: { keys },
    clients: [
      {
        client_id: 'mcp-e2e',
        id_token_signed_response_alg: 'ES256',
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        redirect_uris: ['http://127.0.0.1:1/callback'],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
      },
      {
        client_id: 'svc',
        id_token_signed_response_alg: 'ES256',
        client_secret: 'svc-secret-svc-secret-svc-secret',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
      },
    ],
    findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
    scopes: ['openid', 'offline_access', 'mcp:tools', 'mcp:admin'],
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource) => ({
          scope: 'mcp:tools mcp:admin',
          audience: resource,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
  });
  return provider;
}

let keys = [newKey()];
let provider = makeProvider(keys);

/** Completes an interaction for `alice`: login, then consent to what was asked. */
async function interact(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  let result;
  if (prompt.name === 'login') {
    result = { login: { accountId: 'alice' } };
  } else {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    const resourceScopes = Object.values(missing.missingResourceScopes || {}).flat();
    const onlyAdmin = !missing.missingOIDCScope && !missing.missingOIDCClaims
      && resourceScopes.length > 0 && resourceScopes.every((scope) => scope === 'mcp:admin');
    if (onlyAdmin) {
      // A step-up to mcp:admin alone (the Python SDK asks for one on a 403 with
      // insufficient_scope): alice declines, instead of a consent that never completes.
      await provider.interactionFinished(req, res, {
        error: 'access_denied',
        error_description: 'alice is no admin',
      }, { mergeWithLastSubmission: false });
      return;
    }
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    // alice may use the MCP tools, and is no admin: mcp:admin is never granted to her.
    for (const [resource, scopes] of Object.entries(missing.missingResourceScopes || {})) {
      grant.addResourceScope(resource, scopes.filter((scope) => scope !== 'mcp:admin').join(' '));
    }
    result = { consent: { grantId: await grant.save() } };
  }
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
}

server.on('request', (req, res) => {
  if (req.method === 'POST' && req.url === '/control/rotate') {
    keys = [newKey(), ...keys];
    provider = makeProvider(keys);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kid: keys[0].kid }));
    return;
  }
  if (req.url.startsWith('/interaction/')) {
    interact(req, res).catch((error) => {
      process.stderr.write(`interaction failed: ${error.stack}\n`);
      res.writeHead(500);
      res.end(String(error));
    });
    return;
  }
  provider.callback()(req, res);
});

process.stdout.write(`READY ${port}\n`);
