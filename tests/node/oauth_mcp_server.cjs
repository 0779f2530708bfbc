// A stateless MCP server on the official TypeScript SDK, on 127.0.0.1 and an ephemeral
// port; prints `READY <port>`. Tools: `echo` and `admin_reset`. It has no auth code: it
// answers every request, and records (on stderr) any Authorization header it receives.
//
// Run with NODE_PATH pointing at the node_modules that holds @modelcontextprotocol/sdk.
'use strict';

const http = require('node:http');
const { McpServer } = require('@modelcontextprotocol/sdk/server/mcp.js');
const { StreamableHTTPServerTransport } = require('@modelcontextprotocol/sdk/server/streamableHttp.js');
const { z } = require('zod');

function makeServer() {
  const server = new McpServer({ name: 'oauth-e2e-server', version: '1.0.0' });
  server.tool('echo', { text: z.string() }, async ({ text }) => ({
    content: [{ type: 'text', text }],
  }));
  server.tool('admin_reset', {}, async () => ({ content: [{ type: 'text', text: 'reset' }] }));
  return server;
}

const httpServer = http.createServer(async (req, res) => {
  if (req.headers.authorization) {
    process.stderr.write(`AUTHORIZATION RECEIVED ${req.headers.authorization.slice(0, 16)}\n`);
  }
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined;
  const server = makeServer();
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  res.on('close', () => {
    transport.close();
    server.close();
  });
  await server.connect(transport);
  await transport.handleRequest(req, res, body);
});

httpServer.listen(0, '127.0.0.1', () => {
  process.stdout.write(`READY ${httpServer.address().port}\n`);
});
