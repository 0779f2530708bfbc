// The official TypeScript SDK's client, for mcp-edge's policy tests (tests/e2e_policy.rs).
//
// Connects to --url over streamable HTTP, lists the tools (every page), and with --call
// TOOL calls it. Prints one JSON line: {"tools": [...], "call": {"text": ...} or
// {"error": {"code": C, "message": M}}}.
//
// Usage: node policy_client.cjs --url http://127.0.0.1:PORT/mcp [--call TOOL]
// Run with NODE_PATH pointing at the node_modules that holds @modelcontextprotocol/sdk.
'use strict';

const { parseArgs } = require('node:util');
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = require('@modelcontextprotocol/sdk/client/streamableHttp.js');

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    call: { type: 'string' },
  },
});

async function main() {
  const client = new Client({ name: 'mcp-edge-policy-test', version: '0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(values.url)));
  const tools = [];
  let cursor;
  do {
    const page = await client.listTools(cursor ? { cursor } : {});
    tools.push(...page.tools.map((tool) => tool.name));
    cursor = page.nextCursor;
  } while (cursor);
  const summary = { tools: tools.sort() };
  if (values.call) {
    try {
      const result = await client.callTool({ name: values.call, arguments: {} });
      summary.call = { text: result.content[0].text };
    } catch (error) {
      summary.call = { error: { code: error.code, message: error.message } };
    }
  }
  await client.close();
  process.stdout.write(JSON.stringify(summary) + '\n');
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
