"""WebSocket broadcast hub across worker threads (examples/ws_echo /room):
every member on every thread receives every broadcast exactly once and in
each sender's order; members that leave stop receiving and nothing breaks.

WH_TEST_LABELS: tsan
"""
import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import websockets  # noqa: E402
from wsutil import BUILD, RawWS, Server  # noqa: E402

ECHO = os.path.join(BUILD, "ws_echo")
N = 40          # members (spread over 4 threads by SO_REUSEPORT)
SENDERS = 4
PER_SENDER = 25


async def run(port):
    uri = "ws://127.0.0.1:%d/room" % port
    members = [await websockets.connect(uri, compression=None) for _ in range(N)]
    # Joining happens in on_open, before the 101 is read by the client, so
    # everyone is a member once connect() returns. Warm-up round to be sure.
    await members[0].send("hello")
    for m in members:
        assert await asyncio.wait_for(m.recv(), 10) == "hello"

    async def send_all(i):
        for k in range(PER_SENDER):
            await members[i].send("s%d-%d" % (i, k))

    await asyncio.gather(*(send_all(i) for i in range(SENDERS)))
    total = SENDERS * PER_SENDER
    for idx, m in enumerate(members):
        got = [await asyncio.wait_for(m.recv(), 10) for _ in range(total)]
        assert len(got) == total, (idx, len(got))
        for i in range(SENDERS):
            mine = [g for g in got if g.startswith("s%d-" % i)]
            assert mine == ["s%d-%d" % (i, k) for k in range(PER_SENDER)], (idx, i, mine[:5])
    print("ok   %d members each got %d broadcasts in per-sender order" % (N, total))

    # Half leave; the rest still get everything, and leavers nothing.
    for m in members[N // 2:]:
        await m.close()
    await members[0].send(b"binary after leave")
    for m in members[: N // 2]:
        assert await asyncio.wait_for(m.recv(), 10) == b"binary after leave"
    print("ok   after %d left, binary broadcast reaches the other %d" % (N - N // 2, N // 2))
    for m in members[: N // 2]:
        await m.close()
        assert m.close_code == 1000


async def slow_member(port):
    # A member that never reads must not make the server buffer without
    # bound: once its queue passes the hub's limit (2 MiB here) it is closed
    # (1008, then dropped when it does not answer the close), while a member
    # that keeps up (it waits for its own messages, at most 8 in flight) gets
    # every message.
    slow = RawWS(port, path="/room", timeout=30)
    fast = await websockets.connect("ws://127.0.0.1:%d/room" % port, compression=None)
    chunk = b"z" * 65536
    total = 400  # 25 MiB: more than the limit plus what the kernel buffers hold
    # "busy" is ws_echo's answer when the hub refused a broadcast (-EAGAIN:
    # a loop is behind); that message reached nobody, so send it again.
    sent = got = busy = 0
    while got < total:
        while sent < total and sent - got < 8:
            await fast.send(chunk)
            sent += 1
        msg = await asyncio.wait_for(fast.recv(), 30)
        if msg == "busy":
            busy += 1
            assert busy < 10 * total, "the hub refuses for good"
            sent -= 1
            continue
        assert msg == chunk, msg[:40]
        got += 1
    ended = await asyncio.get_running_loop().run_in_executor(None, slow.at_eof, 30)
    assert ended, "slow member was not disconnected"
    slow.close()
    await fast.close()
    assert fast.close_code == 1000, fast.close_code
    print("ok   a member that never reads is closed; the other got all %d x 64 KiB" % total)


def main():
    with Server([ECHO, "0", "--threads", "4", "--room-max-queued", str(2 << 20)]) as s:
        asyncio.run(run(s.port))
        asyncio.run(slow_member(s.port))
        assert s.proc.poll() is None, "server died"
    print("all passed")


if __name__ == "__main__":
    main()
