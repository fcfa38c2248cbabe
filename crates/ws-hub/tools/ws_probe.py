#!/usr/bin/env python3
"""Stand-in for `brisk-load ws` until it exists: idle memory and broadcast
latency against the `ws_hub` example server, with the Python standard
library only (asyncio, raw WebSocket framing).

    cargo run --release -p brisk-examples --example ws_hub -- --listen 127.0.0.1:9001 &
    python3 crates/ws-hub/tools/ws_probe.py idle --port 9001 --connections 15000
    python3 crates/ws-hub/tools/ws_probe.py broadcast --port 9001 --connections 15000 --messages 20

`idle` opens N connections (from 127.0.0.2, 127.0.0.3, ... 10,000 per
source address), answers the server's pings, and prints the server's RSS
growth per connection from /stats. `broadcast` also subscribes every
connection to one topic, publishes one message per second (with a send
timestamp and a sequence number) from one more connection, and prints
delivery latency percentiles and lost / duplicated counts. Only
127.0.0.0/8 is targeted; the run is bounded by its arguments.
"""

import argparse
import asyncio
import base64
import json
import os
import struct
import time
import urllib.request

PER_SOURCE = 10_000


def stats(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats") as r:
        return json.loads(r.read())


def frame(payload: bytes, opcode=0x1) -> bytes:
    """A masked client frame."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def read_frame(r):
    b0, b1 = await r.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await r.readexactly(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", await r.readexactly(8))
    return b0 & 0x0F, await r.readexactly(n)


class Conn:
    def __init__(self, r, w):
        self.r, self.w = r, w
        self.seqs = []
        self.latencies = []
        self.on_text = None
        # Answer pings from the start: opening thousands of connections
        # takes longer than the server's ping interval.
        self.task = asyncio.create_task(self.pump())

    async def pump(self):
        try:
            while True:
                op, data = await read_frame(self.r)
                if op == 0x9:
                    self.w.write(frame(data, 0xA))
                elif op == 0x8:
                    return
                elif op == 0x1 and self.on_text:
                    self.on_text(self, data)
        except (asyncio.IncompleteReadError, ConnectionError):
            return


async def connect(port, i):
    src = f"127.0.0.{2 + i // PER_SOURCE}"
    r, w = await asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0), limit=1 << 20)
    key = base64.b64encode(os.urandom(16)).decode()
    w.write(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = await r.readuntil(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n")[0]:
        raise RuntimeError(head.decode(errors="replace"))
    return Conn(r, w)


async def open_many(port, n):
    conns = []
    batch = 200
    for start in range(0, n, batch):
        conns += await asyncio.gather(*(connect(port, i) for i in range(start, min(n, start + batch))))
    return conns


def pct(sorted_values, q):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def idle(args):
    before = stats(args.port)
    conns = await open_many(args.port, args.connections)
    await asyncio.sleep(args.settle)
    after = stats(args.port)
    growth = after["rss_bytes"] - before["rss_bytes"]
    print(
        json.dumps(
            {
                "connections": after["connections"] - before["connections"],
                "rss_before": before["rss_bytes"],
                "rss_after": after["rss_bytes"],
                "rss_growth_per_connection": growth / args.connections,
            }
        )
    )
    for c in conns:
        c.task.cancel()


async def broadcast(args):
    conns = await open_many(args.port, args.connections)
    sub = frame(json.dumps({"v": 1, "type": "subscribe", "topic": "bench"}).encode())

    def on_text(c, data):
        m = json.loads(data)
        if m.get("type") == "message":
            d = m["data"]
            c.seqs.append(d["seq"])
            c.latencies.append(time.time() - d["ts"])

    for c in conns:
        c.on_text = on_text
        c.w.write(sub)
    await asyncio.sleep(2)
    pub = await connect(args.port, args.connections)
    for seq in range(args.messages):
        msg = {"v": 1, "type": "publish", "topic": "bench", "data": {"seq": seq, "ts": time.time()}}
        pub.w.write(frame(json.dumps(msg).encode()))
        await asyncio.sleep(args.interval)
    await asyncio.sleep(3)
    lat = sorted(l for c in conns for l in c.latencies)
    lost = sum(max(0, args.messages - len(set(c.seqs))) for c in conns)
    dup = sum(len(c.seqs) - len(set(c.seqs)) for c in conns)
    print(
        json.dumps(
            {
                "connections": len(conns),
                "messages": args.messages,
                "delivered": len(lat),
                "lost": lost,
                "duplicated": dup,
                "p50_ms": pct(lat, 0.5) * 1000,
                "p99_ms": pct(lat, 0.99) * 1000,
                "p999_ms": pct(lat, 0.999) * 1000,
                "server": stats(args.port),
            }
        )
    )
    for c in conns + [pub]:
        c.task.cancel()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["idle", "broadcast"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--messages", type=int, default=10)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--settle", type=float, default=3.0)
    args = p.parse_args()
    if args.connections > 18_000:
        raise SystemExit("at most 18,000 connections per process (20,000 open files)")
    asyncio.run(idle(args) if args.mode == "idle" else broadcast(args))


if __name__ == "__main__":
    main()
