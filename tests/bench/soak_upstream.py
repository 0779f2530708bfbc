"""The scripted MCP upstream of the soak (`bench.py soak-upstream PORT`): asyncio, keep-alive.

Routes (the proxy routes /sse/ here):
  POST /sse/mcp?ms=N       streamable HTTP tools/call answered as an SSE response: a progress
                           notification, N ms later (default 0) the result; then the next
                           request on the same connection
  GET  /sse/stream         standing GET stream: a notification every NOTIFY_EVERY s
  GET  /sse/legacy         legacy SSE session: `endpoint` event naming
                           /sse/messages/?session_id=ID, then one `message` event per POST
  POST /sse/messages/?session_id=ID
                           202 Accepted; the result goes out on that session's stream
  GET  /sse/firehose       16 KB events at 400 KB/s, written only as fast as the reader takes
                           them (a slow reader stalls it)
  GET  /stats              counters as JSON
Every body is answered with `Content-Length` or chunked encoding, so the proxy may pool the
connection afterwards.
"""

import asyncio
import itertools
import json
import time
import urllib.parse

from common import raise_nofile

NOTIFY_EVERY = 5.0
FIREHOSE_EVENT = b"data: " + b"f" * (16000 - 8) + b"\n\n"
FIREHOSE_INTERVAL = 0.04
SSE_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
END = b"0\r\n\r\n"


def chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


def event(data, name=b"message"):
    return chunk(b"event: %s\ndata: %s\n\n" % (name, data))


def result(rid):
    return json.dumps({"jsonrpc": "2.0", "id": rid, "result": {
        "content": [{"type": "text", "text": "hello"}], "isError": False}}).encode()


def progress(rid):
    return json.dumps({"jsonrpc": "2.0", "method": "notifications/progress",
                       "params": {"progressToken": rid, "progress": 1}}).encode()


def request_id(body):
    try:
        return json.loads(body).get("id", 1)
    except (ValueError, AttributeError):
        return 1


class SoakUpstream:
    def __init__(self):
        self.sessions = {}   # session id -> asyncio.Queue of messages for its stream
        self.ids = itertools.count(1)
        self.counts = {}

    def count(self, key):
        self.counts[key] = self.counts.get(key, 0) + 1

    async def serve(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode(errors="replace").split("\r\n")
                method, target = lines[0].split(" ")[:2]
                length = 0
                for line in lines[1:]:
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                url = urllib.parse.urlsplit(target)
                q = dict(urllib.parse.parse_qsl(url.query))
                keep = await self.route(method, url.path, q, body, reader, writer)
                if not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    async def route(self, method, path, q, body, r, w):
        """Answers one request; False when the connection must close afterwards."""
        if method == "POST" and path == "/sse/mcp":
            self.count("call")
            rid = request_id(body)
            w.write(SSE_HEAD + event(progress(rid)))
            await w.drain()
            ms = int(q.get("ms", "0"))
            if ms:
                await asyncio.sleep(ms / 1000)
            w.write(event(result(rid)) + END)
            await w.drain()
            return True
        if method == "POST" and path.startswith("/sse/messages"):
            queue = self.sessions.get(q.get("session_id", ""))
            if queue is None:
                self.count("message_unknown_session")
                w.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                return True
            self.count("message")
            queue.put_nowait(result(request_id(body)))
            w.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
            return True
        if method == "GET" and path == "/sse/stream":
            self.count("stream")
            w.write(SSE_HEAD)
            while True:
                await w.drain()
                await asyncio.sleep(NOTIFY_EVERY)
                w.write(event(b'{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}'))
        if method == "GET" and path == "/sse/legacy":
            self.count("legacy")
            sid = f"s{next(self.ids)}"
            queue = self.sessions[sid] = asyncio.Queue()
            gone = asyncio.ensure_future(r.read(1))   # the proxy closed the stream
            try:
                w.write(SSE_HEAD + event(f"/sse/messages/?session_id={sid}".encode(), b"endpoint"))
                while True:
                    await w.drain()
                    msg = asyncio.ensure_future(queue.get())
                    await asyncio.wait({msg, gone}, return_when=asyncio.FIRST_COMPLETED)
                    if not msg.done():
                        msg.cancel()
                        return False
                    w.write(event(msg.result()))
            finally:
                gone.cancel()
                del self.sessions[sid]
        if method == "GET" and path == "/sse/firehose":
            self.count("firehose")
            w.write(SSE_HEAD)
            while True:
                await w.drain()   # a stalled reader stalls this writer: no unbounded buffer
                await asyncio.sleep(FIREHOSE_INTERVAL)
                w.write(chunk(FIREHOSE_EVENT))
        if path == "/stats":
            data = json.dumps(dict(self.counts, sessions=len(self.sessions))).encode()
            w.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(data), data))
            return True
        w.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        return True


def run_soak_upstream(port):
    raise_nofile()
    up = SoakUpstream()

    async def main():
        srv = await asyncio.start_server(up.serve, "127.0.0.1", port, backlog=4096)
        async with srv:
            await srv.serve_forever()
    asyncio.run(main())
