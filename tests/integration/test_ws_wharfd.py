"""wharfd's WebSocket endpoints: /ws/echo only with --ws-echo, /ws/chat
always (every client sees every message, across worker threads), the chat
page and its assets are served, and a graceful stop says 1001.

WH_TEST_LABELS: tsan"""
import asyncio
import json
import os
import signal
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import websockets  # noqa: E402
from wsutil import BUILD, RawWS, Server, http_exchange, upgrade_request  # noqa: E402

WHARFD = os.path.join(BUILD, "wharfd")
ROOT = os.path.join(os.environ.get("WH_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../..")),
                    "public")
LISTEN = r"listening on \S*:(\d+)"


def wharfd(*extra):
    return Server([WHARFD, "--bind", "127.0.0.1:0", "--root", ROOT, "--threads", "2",
                   "--access-log", "off", *extra], pattern=LISTEN, stream="stderr")


async def chat(port):
    uri = "ws://127.0.0.1:%d/ws/chat" % port
    clients = [await websockets.connect(uri, compression=None) for _ in range(6)]
    line = json.dumps({"name": "ana", "text": "hi all ✓"})
    await clients[0].send(line)
    for c in clients:
        assert await asyncio.wait_for(c.recv(), 10) == line
    await clients[3].send(json.dumps({"name": "bo", "text": "hello"}))
    for c in clients:
        assert json.loads(await asyncio.wait_for(c.recv(), 10))["name"] == "bo"
    print("ok   /ws/chat: 6 clients see every message")
    # Binary is not chat: the sender is closed with 1003, the room goes on.
    await clients[5].send(b"\x00")
    try:
        await asyncio.wait_for(clients[5].recv(), 10)
    except websockets.ConnectionClosed:
        pass
    assert clients[5].close_code == 1003, clients[5].close_code
    # Oversized chat line -> 1009.
    await clients[4].send("x" * 5000)
    try:
        await asyncio.wait_for(clients[4].recv(), 10)
    except websockets.ConnectionClosed:
        pass
    assert clients[4].close_code == 1009, clients[4].close_code
    await clients[1].send("still on")
    for c in clients[:4]:
        assert await asyncio.wait_for(c.recv(), 10) == "still on"
    print("ok   /ws/chat: binary -> 1003, > 4 KiB -> 1009, others unaffected")
    for c in clients[:4]:
        await c.close()


async def echo(port):
    async with websockets.connect("ws://127.0.0.1:%d/ws/echo" % port, compression=None,
                                  max_size=None) as ws:
        for m in ["a", "ü" * 1000, b"\x00\xff" * 40000]:
            await ws.send(m)
            assert await ws.recv() == m
    print("ok   /ws/echo echoes text and binary")


def main():
    with wharfd() as s:
        st, _, _ = http_exchange(s.port, upgrade_request(path="/ws/echo"))
        assert st == 404, st
        print("ok   /ws/echo is absent without --ws-echo (404)")
        asyncio.run(chat(s.port))
        for name, ctype in (("chat.html", "text/html"), ("chat.js", "javascript"),
                            ("style.css", "text/css")):
            with urllib.request.urlopen("http://127.0.0.1:%d/%s" % (s.port, name), timeout=5) as r:
                assert r.status == 200 and ctype in r.headers.get("Content-Type", ""), name
        print("ok   chat page and assets served")
    with wharfd("--ws-echo") as s:
        asyncio.run(echo(s.port))
        c = RawWS(s.port, path="/ws/chat")
        s.proc.send_signal(signal.SIGTERM)
        r = c.recv_close()
        assert r is not None and r[0] == 1001, r
        c.close()
        s.proc.wait(timeout=15)
        print("ok   SIGTERM -> 1001 to chat members, wharfd exits (%d)" % s.proc.returncode)
    print("all passed")


if __name__ == "__main__":
    main()
