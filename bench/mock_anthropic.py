"""A minimal, fast stand-in for ``POST /v1/messages`` on loopback, for benchmarks (raw asyncio
protocol, HTTP/1.1 keep-alive, no framework, so the upstream costs as little CPU as possible).

    .venv/bin/python bench/mock_anthropic.py [--port 0]     # prints "PORT <n>" once listening

The mode is the query string (the proxy passes it through unchanged):

- ``?mode=json``   one Message (with ``usage``) as JSON, ``content-length`` framed;
- ``?mode=stream`` a short SSE stream (message_start ... message_stop) written at once, chunked;
- ``?mode=gapped&chunks=5&gap_ms=50`` message_start, then ``chunks`` content_block_delta events
  ``gap_ms`` apart (one HTTP chunk each), then the end of the message;
- ``?mode=slow&ping_s=2&hold_s=60`` message_start and one delta at once, then a ``ping`` every
  ``ping_s`` seconds until the client leaves or ``hold_s`` seconds pass (then the end);
- ``?mode=long&deltas=1000&gap_ms=1`` a long answer: message_start, content_block_start, ``deltas``
  content_block_delta events, the end (``deltas`` + 5 events), one HTTP chunk and one socket write per
  event, ``gap_ms`` apart (as a model emits tokens, so each event reaches the proxy in its own read);
  ``gap_ms=0`` writes the whole answer at once.

Without ``mode`` in the query, a body containing ``"stream": true`` (or ``"stream":true``) gets the
short stream and any other body the JSON answer (for gateways that do not pass the query string on).

``GET /_stats`` -> ``{"connections": accepted so far, "open": open now, "requests": answered}``.
Wire shapes: https://docs.anthropic.com/en/api/messages and /messages-streaming.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from urllib.parse import parse_qsl

USAGE = {"input_tokens": 25, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 3400, "output_tokens": 12}
MESSAGE = {"id": "msg_bench", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
           "content": [{"type": "text", "text": "Hello from the benchmark upstream"}], "stop_reason": "end_turn",
           "stop_sequence": None, "usage": USAGE}
JSON_BODY = json.dumps(MESSAGE).encode()
JSON_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nrequest-id: req_bench\r\n"
             b"content-length: %d\r\n\r\n" % len(JSON_BODY))
SSE_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\n"
            b"request-id: req_bench\r\ntransfer-encoding: chunked\r\n\r\n")


def sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


MESSAGE_START = sse("message_start", {"type": "message_start", "message": {**MESSAGE, "content": [],
                    "stop_reason": None, "usage": {**USAGE, "output_tokens": 1}}})
BLOCK_START = sse("content_block_start", {"type": "content_block_start", "index": 0,
                                          "content_block": {"type": "text", "text": ""}})
PING = sse("ping", {"type": "ping"})
END = (sse("content_block_stop", {"type": "content_block_stop", "index": 0})
       + sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                               "usage": {"output_tokens": 12}})
       + sse("message_stop", {"type": "message_stop"}))


def delta(i: int) -> bytes:
    return sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                       "delta": {"type": "text_delta", "text": f"word{i} "}})


# The short stream: one HTTP chunk per event, all written at once.
STREAM_RESPONSE = SSE_HEAD + b"".join(chunk(e) for e in (MESSAGE_START, BLOCK_START, PING, delta(0), delta(1), END)) \
    + b"0\r\n\r\n"


def long_events(deltas: int) -> list[bytes]:
    """The events of a ``deltas``-delta answer, one bytes object each (``deltas`` + 5 events)."""
    ends = [e + b"\n\n" for e in END.split(b"\n\n") if e]
    return [MESSAGE_START, BLOCK_START, *(delta(i) for i in range(deltas)), *ends]


class Stats:
    connections = 0
    open = 0
    requests = 0


class MockProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        Stats.connections += 1
        Stats.open += 1

    def connection_lost(self, exc: Exception | None) -> None:
        Stats.open -= 1
        if self.task is not None:
            self.task.cancel()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.task is None:  # one request at a time per connection (no pipelining)
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17:stop if stop > 0 else None])
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4:end + 4 + length])
            del self.buffer[:end + 4 + length]
            target = head[:head.find(b"\r\n")].split(b" ")[1].decode()
            self.answer(target, b'"stream": true' in body or b'"stream":true' in body)

    def answer(self, target: str, stream: bool = False) -> None:
        assert self.transport is not None
        path, _, query = target.partition("?")
        Stats.requests += 1
        if path == "/_stats":
            body = json.dumps({"connections": Stats.connections, "open": Stats.open,
                               "requests": Stats.requests}).encode()
            self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                                 % (len(body), body))
            return
        args = dict(parse_qsl(query))
        mode = args.get("mode") or ("stream" if stream else "json")
        if mode == "json":
            self.transport.write(JSON_HEAD + JSON_BODY)
        elif mode == "stream":
            self.transport.write(STREAM_RESPONSE)
        elif mode == "gapped":
            self.task = asyncio.ensure_future(self.gapped(int(args.get("chunks", 5)),
                                                          float(args.get("gap_ms", 50)) / 1000))
        elif mode == "slow":
            self.task = asyncio.ensure_future(self.slow(float(args.get("ping_s", 2)),
                                                        float(args.get("hold_s", 60))))
        elif mode == "long":
            deltas, gap_s = int(args.get("deltas", 1000)), float(args.get("gap_ms", 1)) / 1000
            if gap_s <= 0:
                self.transport.write(SSE_HEAD + b"".join(chunk(e) for e in long_events(deltas)) + b"0\r\n\r\n")
            else:
                self.task = asyncio.ensure_future(self.long(deltas, gap_s))
        else:
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")

    async def gapped(self, chunks: int, gap_s: float) -> None:
        assert self.transport is not None
        self.transport.write(SSE_HEAD + chunk(MESSAGE_START + BLOCK_START))
        for i in range(chunks):
            await asyncio.sleep(gap_s)
            self.transport.write(chunk(delta(i)))
        self.transport.write(chunk(END) + b"0\r\n\r\n")
        self.done()

    async def long(self, deltas: int, gap_s: float) -> None:
        assert self.transport is not None
        self.transport.write(SSE_HEAD)
        for event in long_events(deltas):
            self.transport.write(chunk(event))
            await asyncio.sleep(gap_s)
        self.transport.write(b"0\r\n\r\n")
        self.done()

    async def slow(self, ping_s: float, hold_s: float) -> None:
        assert self.transport is not None
        self.transport.write(SSE_HEAD + chunk(MESSAGE_START + BLOCK_START + delta(0)))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + hold_s
        while loop.time() < deadline:
            await asyncio.sleep(min(ping_s, max(0.0, deadline - loop.time())))
            self.transport.write(chunk(PING))
        self.transport.write(chunk(END) + b"0\r\n\r\n")
        self.done()

    def done(self) -> None:
        self.task = None
        if self.buffer:
            self.data_received(b"")


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(MockProtocol, "127.0.0.1", port, backlog=4096)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(serve(args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
