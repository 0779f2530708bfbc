// The official TypeScript SDK v2 client (`@modelcontextprotocol/client`), pinned to MCP
// 2026-07-28, against a URL: lists the tools, calls `echo` and tries the hidden
// `admin_reset`. With `--announce`, it then opens a `subscriptions/listen` stream for tool
// list changes, calls `touch_tools` so that the server announces a change on it, waits
// for that `notifications/tools/list_changed`, and closes the subscription.
//
// (The SDK keeps list results for their `ttlMs` itself: a second `listTools` in one run
// would not reach the edge. Each run is a new client.)
//
// Prints one JSON line:
// {"protocol": "2026-07-28", "tools": [...], "echo": "...",
//  "admin_error": {"code": c, "message": "..."} | null, "admin_result": "..." | null,
//  "acknowledged": bool, "list_changed": bool, "error": "..." | null}
//
// Usage: node modern_client.mjs --url http://127.0.0.1:PORT/mcp [--announce]
//        [--wait-ms 5000]
// Run with NODE_PATH pointing at the node_modules that holds @modelcontextprotocol/client.

import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import path from 'node:path';

// ES modules ignore NODE_PATH: resolve the SDK through it explicitly.
const require = createRequire(path.join(process.env.NODE_PATH ?? process.cwd(), 'x.js'));
const { Client, StreamableHTTPClientTransport } = await import(
  pathToFileURL(require.resolve('@modelcontextprotocol/client')).href
);

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    announce: { type: 'boolean', default: false },
    'wait-ms': { type: 'string', default: '5000' },
  },
});
if (!values.url) {
  process.stderr.write('--url is required\n');
  process.exit(2);
}
const waitMs = Number(values['wait-ms']);
const summary = {
  protocol: null,
  tools: [],
  echo: null,
  admin_error: null,
  admin_result: null,
  acknowledged: false,
  list_changed: false,
  error: null,
};

const client = new Client(
  { name: 'modern-client', version: '1.0.0' },
  { versionNegotiation: { mode: { pin: '2026-07-28' } } },
);
let announced;
const changed = new Promise((resolve) => {
  announced = resolve;
});
client.setNotificationHandler('notifications/tools/list_changed', () => announced(true));

try {
  await client.connect(new StreamableHTTPClientTransport(new URL(values.url)));
  summary.protocol = client.getNegotiatedProtocolVersion?.() ?? null;
  summary.tools = (await client.listTools()).tools.map((tool) => tool.name).sort();
  const echo = await client.callTool({ name: 'echo', arguments: { text: 'through the edge' } });
  summary.echo = echo.content?.[0]?.text ?? null;
  try {
    const admin = await client.callTool({ name: 'admin_reset', arguments: {} });
    summary.admin_result = admin.content?.[0]?.text ?? JSON.stringify(admin);
  } catch (error) {
    summary.admin_error = { code: error.code ?? null, message: String(error.message ?? error) };
  }
  if (values.announce) {
    const subscription = await client.listen({ toolsListChanged: true });
    summary.acknowledged = true;
    await client.callTool({ name: 'touch_tools', arguments: {} });
    const timeout = new Promise((resolve) => setTimeout(() => resolve(false), waitMs));
    summary.list_changed = await Promise.race([changed, timeout]);
    await subscription.close();
  }
} catch (error) {
  summary.error = String(error?.stack ?? error);
} finally {
  await client.close().catch(() => {});
}
process.stdout.write(`${JSON.stringify(summary)}\n`);
