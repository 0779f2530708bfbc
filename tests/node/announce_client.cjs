// Runs fresh MCP sessions against a URL with the official TypeScript SDK's client and
// counts those in which the messages of the server's `announce` tool arrived.
//
// Each session: `connect` (initialize, then `notifications/initialized`, after whose 202
// the SDK opens the standalone GET stream without waiting for it), `tools/call announce`
// at once, then up to `--wait-ms` for the elicitation request and the log notification the
// tool sent on the GET stream; then the session is ended with DELETE. Prints one JSON line:
// {"sessions": N, "delivered": k, "requests": r, "notifications": n, "errors": e,
//  "first_error": "..."}, where `delivered` counts the sessions that got both messages.
//
// Usage: node announce_client.cjs --url http://127.0.0.1:PORT/mcp [--sessions 200]
//        [--wait-ms 1000] [--concurrency 1]
// Run with NODE_PATH pointing at the node_modules that holds @modelcontextprotocol/sdk.
'use strict';

const { parseArgs } = require('node:util');
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = require('@modelcontextprotocol/sdk/client/streamableHttp.js');
const {
  ElicitRequestSchema,
  LoggingMessageNotificationSchema,
} = require('@modelcontextprotocol/sdk/types.js');

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    sessions: { type: 'string', default: '200' },
    'wait-ms': { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '1' },
  },
});
if (!values.url) {
  process.stderr.write('--url is required\n');
  process.exit(2);
}
const url = new URL(values.url);
const total = Number(values.sessions);
const waitMs = Number(values['wait-ms']);
const concurrency = Math.max(1, Number(values.concurrency));

/** A promise with its resolve function. */
function signal() {
  let resolve;
  const promise = new Promise((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** One session; resolves to which of the tool's two messages arrived. */
async function session() {
  const request = signal();
  const notification = signal();
  const client = new Client(
    { name: 'announce-client', version: '1.0.0' },
    { capabilities: { elicitation: { form: {} } } },
  );
  client.setRequestHandler(ElicitRequestSchema, (r) => {
    if (r.params.message === 'announced') request.resolve(true);
    return { action: 'decline' };
  });
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
    if (n.params.data === 'announced') notification.resolve(true);
  });
  const transport = new StreamableHTTPClientTransport(url);
  await client.connect(transport);
  let timer;
  try {
    const result = await client.callTool({ name: 'announce', arguments: {} });
    if (result.content?.[0]?.text !== 'announced') {
      throw new Error(`unexpected tool result ${JSON.stringify(result)}`);
    }
    const deadline = new Promise((resolve) => {
      timer = setTimeout(() => resolve(false), waitMs);
    });
    const [gotRequest, gotNotification] = await Promise.all([
      Promise.race([request.promise, deadline]),
      Promise.race([notification.promise, deadline]),
    ]);
    return { request: gotRequest, notification: gotNotification };
  } finally {
    clearTimeout(timer);
    await transport.terminateSession().catch(() => {});
    await client.close().catch(() => {});
  }
}

async function main() {
  const counts = { sessions: total, delivered: 0, requests: 0, notifications: 0, errors: 0 };
  let firstError = null;
  let started = 0;
  async function worker() {
    while (started < total) {
      started += 1;
      try {
        const got = await session();
        counts.requests += got.request ? 1 : 0;
        counts.notifications += got.notification ? 1 : 0;
        counts.delivered += got.request && got.notification ? 1 : 0;
      } catch (e) {
        counts.errors += 1;
        firstError ??= String(e && e.stack ? e.stack : e);
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (firstError) counts.first_error = firstError;
  process.stdout.write(`${JSON.stringify(counts)}\n`);
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${e && e.stack ? e.stack : e}\n`);
    process.exit(1);
  },
);
