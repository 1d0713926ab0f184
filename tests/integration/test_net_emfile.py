"""EMFILE: echo_net under a low RLIMIT_NOFILE (set for the child only). More
clients than descriptors connect at once; the server must back off instead of
spinning, and serve every client once others leave. Afterwards it serves
again as usual."""
import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from whtest import Proc, binary, check, finish, split_addr  # noqa: E402

LIMIT = 24  # stdin/out/err, epoll, eventfd, signalfd, listeners ... and ~15 conns


def low_limit():
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    with Proc([binary("echo_net"), "127.0.0.1:0"], ready=r"^ready", preexec_fn=low_limit) as p:
        addr = split_addr(p.lines[0].split()[2])
        n = 60
        clients = []
        for i in range(n):
            c = socket.create_connection(addr, timeout=10)  # the kernel's backlog accepts
            c.sendall(b"x%03d" % i)
            clients.append(c)
        # the server is out of descriptors now; it must not spin
        cpu0 = cpu_seconds(p.pid)
        time.sleep(1.0)
        cpu1 = cpu_seconds(p.pid)
        print(f"server CPU during 1 s at EMFILE: {cpu1 - cpu0:.2f} s")
        check(cpu1 - cpu0 < 0.5, "no busy loop while out of descriptors")
        check(p.alive(), "server alive at EMFILE")
        # clients that got their echo leave; the rest must be served
        served = 0
        end = time.time() + 60
        left = list(enumerate(clients))
        while left and time.time() < end:
            nxt = []
            for i, c in left:
                c.settimeout(0.05)
                try:
                    b = c.recv(16)
                except socket.timeout:
                    nxt.append((i, c))
                    continue
                check(b == b"x%03d" % i, f"client {i} echo {b!r}")
                served += 1
                c.close()
            left = nxt
        check(served == n, f"all {n} clients served after descriptors freed up ({served})")
        for _, c in left:
            c.close()
        s = socket.create_connection(addr, timeout=10)
        s.sendall(b"again")
        check(s.recv(16) == b"again", "serves normally afterwards")
        s.close()
    finish()


if __name__ == "__main__":
    main()
