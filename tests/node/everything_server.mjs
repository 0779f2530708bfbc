// Starts `@modelcontextprotocol/server-everything`'s streamable HTTP server on 127.0.0.1
// and an ephemeral port, and prints `READY <port>` on stdout.
//
// The package listens with `app.listen(process.env.PORT || 3001)`, on every interface and
// a fixed default port. The first `listen` of a net.Server in this process is therefore
// pinned to 127.0.0.1:0 here, and announces the port the kernel chose.
//
// Run with node 22 (the package's engines), from the directory whose node_modules holds
// the package: `node everything_server.mjs <node_modules>`.
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const modules = process.argv[2];
if (!modules) {
  process.stderr.write('usage: node everything_server.mjs <node_modules directory>\n');
  process.exit(2);
}

const listen = net.Server.prototype.listen;
let pinned = false;
net.Server.prototype.listen = function pinnedListen(...args) {
  if (pinned) return listen.apply(this, args);
  pinned = true;
  const callback = typeof args[args.length - 1] === 'function' ? args[args.length - 1] : undefined;
  return listen.call(this, 0, '127.0.0.1', () => {
    process.stdout.write(`READY ${this.address().port}\n`);
    callback?.();
  });
};

const entry = path.join(modules, '@modelcontextprotocol/server-everything/dist/transports/streamableHttp.js');
await import(pathToFileURL(entry).href);
