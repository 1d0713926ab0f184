#!/usr/bin/env python3
"""Drives a fixed number of GET /plaintext requests for bench/callgrind_req.sh.

pipelined: 16 requests per write on one connection (as bench/pipeline.lua),
keepalive: one request per round trip, close: a new connection per request
("Connection: close", read to EOF: bench/compare.sh's connclose). A warm-up of 16 requests on its own
connection comes first, so the fd cache is filled in every run alike.
Exits non-zero if an answer is not a 200 with the 13-byte body.
"""
import argparse
import socket
import sys
import time

REQ = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
REQ_CLOSE = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def connect(port):
    deadline = time.time() + 60  # valgrind starts slowly
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=60)
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def read_answers(s, buf, want):
    """Reads want complete answers; returns the bytes left over."""
    got = 0
    while got < want:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            chunk = s.recv(65536)
            if not chunk:
                sys.exit("callgrind_client: connection closed early")
            buf += chunk
            continue
        head = buf[:end].decode("latin-1")
        if not head.startswith("HTTP/1.1 200 "):
            sys.exit("callgrind_client: unexpected answer: " + head.splitlines()[0])
        clen = 0
        for line in head.split("\r\n")[1:]:
            k, _, v = line.partition(":")
            if k.lower() == "content-length":
                clen = int(v)
        while len(buf) < end + 4 + clen:
            chunk = s.recv(65536)
            if not chunk:
                sys.exit("callgrind_client: connection closed early")
            buf += chunk
        if clen != 13:
            sys.exit("callgrind_client: body of %d bytes" % clen)
        buf = buf[end + 4 + clen:]
        got += 1
    return buf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=["pipelined", "keepalive", "close"], default="pipelined")
    ap.add_argument("--count", type=int, required=True)
    a = ap.parse_args()
    w = connect(a.port)
    w.sendall(REQ * 16)
    read_answers(w, b"", 16)
    w.close()
    if a.mode == "close":
        for _ in range(a.count):
            s = connect(a.port)
            s.sendall(REQ_CLOSE)
            if read_answers(s, b"", 1) or s.recv(1):
                sys.exit("callgrind_client: bytes after the answer, or no EOF")
            s.close()
        return
    s = connect(a.port)
    buf = b""
    left = a.count
    while left:
        k = min(16, left) if a.mode == "pipelined" else 1
        s.sendall(REQ * k)
        buf = read_answers(s, buf, k)
        left -= k
    s.close()


if __name__ == "__main__":
    main()
