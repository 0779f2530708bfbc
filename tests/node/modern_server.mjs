// An MCP server on the official TypeScript SDK v2 (`@modelcontextprotocol/server`, which
// speaks 2026-07-28), served statelessly by `createMcpHandler` over `node:http`.
//
// Tools:
//   echo {text}        answers the text;
//   admin_reset        answers "reset" (a route of the edge hides it);
//   touch_tools        publishes `notifications/tools/list_changed` to every open
//                      `subscriptions/listen` stream that asked for it.
// `tools/list` carries the cache hint {ttlMs: 60000, cacheScope: "public"}.
//
// Prints `READY <port>` once listening on 127.0.0.1 (an ephemeral port), then one line
// per served request on stdout, `REQUEST <HTTP method> <Mcp-Method header>`, and one per
// tool call, `CALL <tool>`.
//
// Usage: node modern_server.mjs
// Run with NODE_PATH pointing at the node_modules that holds @modelcontextprotocol/server.

import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import path from 'node:path';

// ES modules ignore NODE_PATH: resolve the SDK through it explicitly.
const require = createRequire(path.join(process.env.NODE_PATH ?? process.cwd(), 'x.js'));
const load = async (name) => import(pathToFileURL(require.resolve(name)).href);
const { McpServer, createMcpHandler, fromJsonSchema } = await load('@modelcontextprotocol/server');
const { toNodeHandler } = await load('@modelcontextprotocol/node');

const handler = createMcpHandler(
  () => {
    const server = new McpServer(
      { name: 'modern-server', version: '1.0.0' },
      {
        capabilities: { tools: { listChanged: true } },
        cacheHints: { 'tools/list': { ttlMs: 60000, cacheScope: 'public' } },
      },
    );
    const text = fromJsonSchema({
      type: 'object',
      properties: { text: { type: 'string' } },
      required: ['text'],
    });
    server.registerTool('echo', { description: 'Answers its text.', inputSchema: text }, ({ text }) => {
      process.stdout.write('CALL echo\n');
      return { content: [{ type: 'text', text }] };
    });
    server.registerTool('admin_reset', { description: 'Resets everything.' }, () => {
      process.stdout.write('CALL admin_reset\n');
      return { content: [{ type: 'text', text: 'reset' }] };
    });
    server.registerTool('touch_tools', { description: 'Announces a changed tool list.' }, () => {
      process.stdout.write('CALL touch_tools\n');
      handler.notify.toolsChanged();
      return { content: [{ type: 'text', text: 'announced' }] };
    });
    return server;
  },
  { legacy: 'reject', onerror: (error) => process.stderr.write(`handler error: ${error}\n`) },
);

const serve = toNodeHandler(handler);
const http = createServer((req, res) => {
  process.stdout.write(`REQUEST ${req.method} ${req.headers['mcp-method'] ?? '-'}\n`);
  serve(req, res);
});
http.listen(0, '127.0.0.1', () => {
  process.stdout.write(`READY ${http.address().port}\n`);
});
