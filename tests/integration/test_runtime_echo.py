"""examples/echo under every connection model: many concurrent TCP clients
echo byte-exact (sizes from 1 byte to 2 MiB), UDP echo, and a clean exit 0 on
SIGTERM.
WH_TEST_LABELS: tsan
"""
import os
import random
import socket
import threading

from rtutil import Failures, Server, connect, recv_exact

MODELS = ["reuseport", "exclusive", "dispatch", "oneshot"]
f = Failures()


def tcp_clients(addr, nclients=40, rounds=5):
    errors = []

    def client(seed):
        rnd = random.Random(seed)
        try:
            with connect(addr) as s:
                for r in range(rounds):
                    n = rnd.choice([1, 7, 100, 1500, 16384, 70000])
                    data = os.urandom(n)
                    s.sendall(data)
                    got = recv_exact(s, n)
                    if got != data:
                        errors.append(f"client {seed} round {r}: {len(got)}/{n} bytes or mismatch")
                        return
        except OSError as e:
            errors.append(f"client {seed}: {e}")

    ts = [threading.Thread(target=client, args=(i,)) for i in range(nclients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return errors


def big_echo(addr, n=2 << 20):
    data = os.urandom(n)
    with connect(addr) as s:
        # Send from a thread: the echo comes back while we are still sending.
        t = threading.Thread(target=s.sendall, args=(data,))
        t.start()
        got = recv_exact(s, n)
        t.join()
    return got == data


def udp_echo(addr, count=50):
    ok = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(2)
        for i in range(count):
            msg = b"dgram %d " % i + os.urandom(i * 10)
            u.sendto(msg, addr)
            try:
                got, _ = u.recvfrom(65536)
                ok += got == msg
            except socket.timeout:
                pass
    return ok


for model in MODELS:
    for threads in ("1", "2"):
        try:
            srv = Server("echo", "127.0.0.1:0", "--threads", threads, "--model", model,
                         want=("tcp", "udp"))
        except RuntimeError as e:
            f.check(False, f"{model}/{threads}: start: {e}")
            continue
        with srv:
            errs = tcp_clients(srv.tcp)
            f.check(not errs, f"{model}/{threads}: tcp clients: {errs[:3]}")
            f.check(big_echo(srv.tcp), f"{model}/{threads}: 2 MiB echo")
            # Loopback UDP does not drop at this rate; allow a little anyway.
            f.check(udp_echo(srv.udp) >= 48, f"{model}/{threads}: udp echo")
            srv.signal()
            rc = srv.wait(15)
            f.check(rc == 0, f"{model}/{threads}: exit code after SIGTERM = {rc}")
        print(f"{model}/{threads} done", flush=True)

f.finish()
