"""WebSocket conformance against examples/ws_echo (RFC 6455): handshake
errors, echo of text/binary, fragments with interleaved control frames,
large messages and the size limit (1009), invalid UTF-8 (1007), ping/pong,
close codes, protocol errors (1002), subprotocol and Origin hooks, idle
ping with a pong timeout, and 1001 on graceful shutdown.

Uses Debian's python3-websockets as the reference client and raw sockets
for what a well-behaved client never sends. With WH_TEST_TLS=1 (the ctest
entry integ.test_ws_conformance.tls) the same checks run over wss://: ws_echo
gets the test certificate and both clients speak TLS.

WH_TEST_LABELS: tsan
"""
import asyncio
import os
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import websockets  # noqa: E402
from tlsutil import tls_mode  # noqa: E402
from wsutil import (BUILD, RawWS, Server, client_ssl, frame, http_exchange,  # noqa: E402
                    tls_server_args, upgrade_request, ws_uri)

ECHO = os.path.join(BUILD, "ws_echo")
failures = []


def echo_server(*args):
    """examples/ws_echo on a free port, listening with TLS in TLS mode."""
    return Server([ECHO, "0", *args, *tls_server_args()])


def connect(uri):
    """The reference client, over TLS (trusting the test CA) in TLS mode."""
    kw = {"ssl": client_ssl(), "server_hostname": "localhost"} if tls_mode() else {}
    return websockets.connect(uri, compression=None, max_size=None, **kw)


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL", what, flush=True)
    else:
        print("ok  ", what, flush=True)


def handshake_tests(port):
    st, h, _ = http_exchange(port, upgrade_request())
    check(st == 101 and h.get("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
          "101 with the RFC 6455 §1.3 accept key")
    check(h.get("upgrade", "").lower() == "websocket" and "upgrade" in h.get("connection", "").lower(),
          "101 carries Upgrade/Connection")
    st, h, _ = http_exchange(port, upgrade_request(version="8"))
    check(st == 426 and h.get("sec-websocket-version") == "13" and
          h.get("upgrade", "").lower() == "websocket", "version 8 -> 426 + version 13 + Upgrade")
    st, _, _ = http_exchange(port, upgrade_request(key=None))
    check(st == 400, "missing key -> 400")
    st, _, _ = http_exchange(port, upgrade_request(key="c2hvcnQ="))
    check(st == 400, "key of 5 bytes -> 400")
    st, _, _ = http_exchange(port, upgrade_request(method="POST", extra="Content-Length: 0\r\n"))
    check(st == 400, "POST -> 400")
    st, _, _ = http_exchange(port, upgrade_request(version=None))
    check(st == 400, "missing version -> 400")
    st, _, _ = http_exchange(port, b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
    check(st == 400, "plain GET (no upgrade) -> 400")
    st, _, _ = http_exchange(port, upgrade_request(path="/nope"))
    check(st == 404, "unknown path -> 404 from the app")


async def client_tests(port):
    uri = ws_uri(port)
    async with connect(uri) as ws:
        await ws.send("héllo wörld €")
        check(await ws.recv() == "héllo wörld €", "text echo (UTF-8)")
        await ws.send(bytes(range(256)))
        check(await ws.recv() == bytes(range(256)), "binary echo")
        await ws.send("")
        check(await ws.recv() == "", "empty text echo")
        # A fragmented message from the client library.
        await ws.send(iter(["frag", "men", "ted"]))
        check(await ws.recv() == "fragmented", "fragmented text joined")
        big = os.urandom(1 << 20)
        await ws.send(big)
        check(await ws.recv() == big, "1 MiB binary echo")
        text = "é" * (1 << 19)  # 1 MiB of UTF-8
        await ws.send(text)
        check(await ws.recv() == text, "1 MiB text echo")
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 5)
        check(True, "ping answered with pong")
    check(ws.close_code == 1000, "client close 1000 acknowledged")

    async with connect(uri) as ws:
        try:
            await ws.send(b"x" * ((1 << 20) + 1))
            await asyncio.wait_for(ws.recv(), 10)
        except websockets.ConnectionClosed:
            pass
    check(ws.close_code == 1009, "message over 1 MiB -> 1009 (got %s)" % ws.close_code)


def raw_tests(port):
    # Fragments with ping in the middle: pong first, then the joined echo.
    c = RawWS(port)
    c.send_frame(1, b"Hel", fin=False)
    c.send_frame(9, b"ping!")
    c.send_frame(0, b"\xce", fin=False)  # a UTF-8 sequence split over fragments
    c.send_frame(0, b"\xbalo", fin=True)
    f1, f2 = c.recv_frame(), c.recv_frame()
    check(f1 == (True, 10, b"ping!"), "pong carries the ping payload, interleaved")
    check(f2 == (True, 1, "Helκlo".encode()), "fragmented text with split UTF-8 echoed")
    # The same, split into 1-byte TCP writes.
    for b in frame(2, b"abc" * 50):
        c.send(bytes([b]))
    check(c.recv_frame() == (True, 2, b"abc" * 50), "frame sent byte by byte")
    # 16-bit and 64-bit lengths.
    c.send_frame(2, b"m" * 300)
    check(c.recv_frame() == (True, 2, b"m" * 300), "16-bit length")
    c.send_frame(2, b"L" * 70000)
    check(c.recv_frame() == (True, 2, b"L" * 70000), "64-bit length")
    # Close handshake: code and reason echoed by code.
    c.send_frame(8, struct.pack(">H", 1000) + b"bye")
    r = c.recv_close()
    check(r is not None and r[0] == 1000, "close 1000 answered with 1000")
    check(c.at_eof(), "server closes TCP after the close handshake")
    c.close()

    def expect_close(frames, code, what, raw=None):
        c = RawWS(port)
        if raw is not None:
            c.send(raw)
        for f in frames:
            c.send_frame(*f[:2], **(f[2] if len(f) > 2 else {}))
        r = c.recv_close()
        check(r is not None and r[0] == code, "%s -> %d (got %r)" % (what, code, r))
        check(c.at_eof(), "%s: connection closed" % what)
        c.close()

    expect_close([(1, b"hi", {"mask": False})], 1002, "unmasked client frame")
    expect_close([(1, b"a\xc0\xafz")], 1007, "invalid UTF-8 (overlong)")
    expect_close([(1, b"a\xed\xa0\x80")], 1007, "invalid UTF-8 (surrogate)")
    expect_close([(1, b"ok\xe2\x82", {"fin": False}), (0, b"A")], 1007,
                 "invalid UTF-8 across fragments")
    expect_close([(1, b"a", {"rsv": 0x40})], 1002, "RSV1 without an extension")
    expect_close([(3, b"")], 1002, "reserved data opcode 3")
    expect_close([(0xB, b"")], 1002, "reserved control opcode 0xB")
    expect_close([(9, b"p" * 126)], 1002, "ping of 126 bytes")
    expect_close([(9, b"p", {"fin": False})], 1002, "fragmented ping")
    expect_close([(0, b"x")], 1002, "continuation without a message")
    expect_close([(1, b"a", {"fin": False}), (2, b"b")], 1002, "new message inside a fragmented one")
    expect_close([(8, b"\x03")], 1002, "close payload of 1 byte")
    expect_close([(8, struct.pack(">H", 1005))], 1002, "close code 1005 on the wire")
    expect_close([(8, struct.pack(">H", 999))], 1002, "close code 999")
    expect_close([(8, struct.pack(">H", 1000) + b"\xff")], 1007, "close reason not UTF-8")
    expect_close([(8, struct.pack(">H", 3000) + b"app")], 3000, "close 3000 echoed")
    expect_close([(8, struct.pack(">H", 4999))], 4999, "close 4999 echoed")

    c = RawWS(port)
    c.send_frame(8, b"")
    f = c.recv_frame()
    check(f is not None and f[1] == 8 and f[2] == b"", "empty close answered with empty close")
    c.close()

    # Nothing is delivered after a close frame.
    c = RawWS(port)
    c.send(frame(8, struct.pack(">H", 1000)) + frame(1, b"late"))
    f = c.recv_frame()
    check(f is not None and f[1] == 8 and c.at_eof(), "data after close ignored")
    c.close()


def backpressure_test(port):
    # /flood sends 256 x 64 KiB only while wh_ws_writable() and resumes from
    # on_drain; a client that reads late gets everything, in order.
    c = RawWS(port, path="/flood", timeout=20)
    c.send_frame(1, b"256")
    time.sleep(1.0)
    ok = True
    for i in range(256):
        f = c.recv_frame()
        if f is None or f[1] != 2 or len(f[2]) != 65536 or struct.unpack(">I", f[2][:4])[0] != i:
            ok = False
            break
    check(ok, "16 MiB produced under backpressure arrives complete and in order")
    f = c.recv_frame()
    drains = int(f[2].split(b"=")[1]) if f and f[1] == 1 and f[2].startswith(b"done") else -1
    check(drains >= 1, "producer paused and was resumed by on_drain (%d drains)" % drains)
    c.close()


def hook_tests():
    with echo_server("--threads", "1", "--protocol", "chat.v2", "--origin",
                     "http://good.example") as s:
        c = RawWS(s.port, extra="Origin: http://good.example\r\n"
                  "Sec-WebSocket-Protocol: chat.v1, chat.v2\r\n")
        check(c.status == 101 and c.headers.get("sec-websocket-protocol") == "chat.v2",
              "subprotocol hook picks chat.v2")
        c.close()
        c = RawWS(s.port, extra="Origin: http://good.example\r\nSec-WebSocket-Protocol: other\r\n")
        check(c.status == 101 and "sec-websocket-protocol" not in c.headers,
              "no subprotocol when none matches")
        c.close()
        st, _, _ = http_exchange(s.port, upgrade_request(extra="Origin: http://evil.example\r\n"))
        check(st == 403, "origin hook refuses -> 403")
        st, _, _ = http_exchange(s.port, upgrade_request())
        check(st == 403, "missing Origin refused by the hook -> 403")


def keepalive_tests():
    # Generous pong timeout: a loaded (sanitizer) run must not miss it.
    with echo_server("--threads", "1", "--ping-interval", "200", "--pong-timeout", "3000") as s:
        # A peer that answers nothing: pinged, then dropped.
        c = RawWS(s.port)
        f = c.recv_frame()
        check(f is not None and f[1] == 9, "idle connection gets a ping")
        check(c.at_eof(20), "no pong -> connection dropped")
        c.close()
        # A peer that answers pings stays.
        c = RawWS(s.port)
        for _ in range(3):
            f = c.recv_frame()
            if f is None or f[1] != 9:
                break
            c.send_frame(10, f[2])
        c.send_frame(1, b"still here")
        f = c.recv_frame()
        while f is not None and f[1] == 9:
            f = c.recv_frame()
        check(f == (True, 1, b"still here"), "answering pings keeps the connection")
        c.close()


def shutdown_test():
    s = echo_server("--threads", "2")
    try:
        c = RawWS(s.port)
        c.send_frame(1, b"x")
        c.recv_frame()
        s.proc.send_signal(signal.SIGTERM)
        r = c.recv_close()
        check(r is not None and r[0] == 1001, "graceful stop -> close 1001 (got %r)" % (r,))
        c.send_frame(8, struct.pack(">H", 1001))
        check(c.at_eof(), "closed after the 1001 handshake")
        c.close()
        t0 = time.time()
        s.proc.wait(timeout=15)
        check(s.proc.returncode == 0, "server exits 0 after graceful stop (%.1fs)" % (time.time() - t0))
    finally:
        s.stop()
        for t in s.threads:
            t.join(timeout=5)
    check(s.sanitizer_report() is None, "no sanitizer report: %s" % s.sanitizer_report())


def transport_test(port):
    """In TLS mode: the checks really run over TLS, and the listener does
    not speak WebSocket in clear text."""
    c = RawWS(port)
    check(c.status == 101 and c.sock.version() in ("TLSv1.2", "TLSv1.3"),
          "upgrade over %s" % c.sock.version())
    c.close()
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    data = b""
    try:
        s.sendall(upgrade_request())
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    finally:
        s.close()
    check(data != b"" and not data.startswith(b"HTTP/1.1 101"),
          "clear-text upgrade to the TLS port refused (%r)" % data[:40])


def main():
    with echo_server("--threads", "2") as s:
        if tls_mode():
            transport_test(s.port)
        handshake_tests(s.port)
        asyncio.run(client_tests(s.port))
        raw_tests(s.port)
        backpressure_test(s.port)
        check(s.proc.poll() is None, "server still running after all the abuse")
    hook_tests()
    keepalive_tests()
    shutdown_test()
    if failures:
        print("%d FAILED:" % len(failures), *failures, sep="\n  ")
        sys.exit(1)
    print("all passed")


if __name__ == "__main__":
    main()
