// An MCP server on the official TypeScript SDK (McpServer + StreamableHTTPServerTransport
// over node's http), stateful, on 127.0.0.1 and an ephemeral port: prints `READY <port>`.
//
// Its tool `announce`, as soon as the call arrives, sends the client an elicitation request
// and a log notification, neither related to the call's request id (as the conformance
// suite's sampling, elicitation and logging tools do on their standalone stream). The SDK's
// transport sends such messages on the session's standalone GET stream, and, without an
// event store, drops them when that stream does not exist yet
// (`WebStandardStreamableHTTPServerTransport.send`: no `relatedRequestId`, no `_GET_stream`
// in `_streamMapping`: return). So they reach the client only when the session's GET
// reached the server before its call. The tool answers without waiting for the client.
//
// Run with NODE_PATH pointing at the node_modules that holds @modelcontextprotocol/sdk.
'use strict';

const http = require('node:http');
const { randomUUID } = require('node:crypto');
const { McpServer } = require('@modelcontextprotocol/sdk/server/mcp.js');
const { StreamableHTTPServerTransport } = require('@modelcontextprotocol/sdk/server/streamableHttp.js');
const { isInitializeRequest } = require('@modelcontextprotocol/sdk/types.js');

/** Live sessions: mcp-session-id -> transport. */
const sessions = new Map();

/** A fresh McpServer for one session. */
function makeServer() {
  const server = new McpServer(
    { name: 'announce-server', version: '1.0.0' },
    { capabilities: { logging: {} } },
  );
  server.registerTool(
    'announce',
    { description: 'Sends an elicitation request and a log notification on the standalone stream, then answers.' },
    async () => {
      // No relatedRequestId: both go to the standalone GET stream, or nowhere. A lost
      // request stays pending until the session ends, so the tool does not await it.
      server.server
        .elicitInput({ message: 'announced', requestedSchema: { type: 'object', properties: {} } })
        .catch(() => {});
      await server.server.sendLoggingMessage({ level: 'info', logger: 'announce', data: 'announced' });
      return { content: [{ type: 'text', text: 'announced' }] };
    },
  );
  return server;
}

/** Reads and parses a JSON request body. */
function readJson(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        resolve(text ? JSON.parse(text) : undefined);
      } catch (e) {
        reject(e);
      }
    });
    req.on('error', reject);
  });
}

function refuse(res, status, message) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
}

async function handle(req, res) {
  if (!req.url.startsWith('/mcp')) {
    return refuse(res, 404, 'not found');
  }
  const sessionId = req.headers['mcp-session-id'];
  const known = sessionId !== undefined ? sessions.get(sessionId) : undefined;
  if (req.method === 'POST') {
    const body = await readJson(req);
    if (known) {
      return known.handleRequest(req, res, body);
    }
    if (sessionId === undefined && isInitializeRequest(body)) {
      const transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => sessions.set(id, transport),
      });
      transport.onclose = () => {
        if (transport.sessionId) sessions.delete(transport.sessionId);
      };
      await makeServer().connect(transport);
      return transport.handleRequest(req, res, body);
    }
    return refuse(res, sessionId === undefined ? 400 : 404, 'no such session');
  }
  if (req.method === 'GET' || req.method === 'DELETE') {
    if (!known) return refuse(res, sessionId === undefined ? 400 : 404, 'no such session');
    return known.handleRequest(req, res);
  }
  res.writeHead(405, { allow: 'GET, POST, DELETE' });
  res.end();
}

const httpServer = http.createServer((req, res) => {
  handle(req, res).catch((e) => {
    process.stderr.write(`request failed: ${e && e.stack ? e.stack : e}\n`);
    if (!res.headersSent) refuse(res, 500, 'internal error');
    else res.end();
  });
});
httpServer.listen(0, '127.0.0.1', () => {
  process.stdout.write(`READY ${httpServer.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
