#!/usr/bin/python3
"""wharfd command line: exit codes and one-line messages for a bad flag, a
bad value, a missing root, a port in use, permission problems; --help,
--version, --config; a wget --mirror of the shipped public/ compared byte
for byte; a 1 GiB sparse file (length, sampled bytes, flat RSS)."""
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

from wharfdutil import SOURCE, WHARFD, Checker, Wharfd, curl

c = Checker()
tmp = tempfile.mkdtemp(prefix="wharfd_cli_")


def run(*args, prefix=()):
    p = subprocess.run(list(prefix) + [WHARFD, *args], capture_output=True, timeout=20,
                       text=True)
    return p.returncode, p.stdout, p.stderr


def one_line_error(err, needle, what):
    lines = [l for l in err.splitlines() if l.startswith("wharfd:")]
    c.check(len(lines) == 1 and needle in lines[0], "%s: %r" % (what, err.strip()))


try:
    rc, out, err = run("--help")
    c.check(rc == 0 and "--root" in out and "--admin" in out, "--help exits 0 with usage")
    rc, out, _ = run("--version")
    c.check(rc == 0 and out.startswith("wharfd "), "--version")
    rc, _, err = run("--bogus")
    c.eq(rc, 2, "unknown flag exit code")
    one_line_error(err, "unknown option '--bogus'", "unknown flag message")
    rc, _, err = run("--port", "http")
    c.eq(rc, 2, "bad --port exit code")
    one_line_error(err, "invalid value 'http' for --port", "bad --port message")
    rc, _, err = run("--model", "fork")
    c.eq(rc, 2, "bad --model")
    rc, _, err = run("--cache-control", "max-age=1\x01")
    c.eq(rc, 2, "--cache-control with a control character exit code")
    one_line_error(err, "control characters", "--cache-control control character message")
    rc, _, err = run("--port")
    c.eq(rc, 2, "missing value exit code")
    one_line_error(err, "needs a value", "missing value message")
    rc, _, err = run("--root", os.path.join(tmp, "missing"), "--bind", "127.0.0.1:0")
    c.eq(rc, 1, "missing root exit code")
    one_line_error(err, "No such file or directory", "missing root message")

    www = os.path.join(tmp, "www")
    os.makedirs(www)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("hi\n")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    rc, _, err = run("--root", www, "--bind", "127.0.0.1:%d" % port, "--access-log", "off")
    busy.close()
    c.eq(rc, 1, "port in use exit code")
    one_line_error(err, "Address already in use", "port in use message")
    rc, _, err = run("--root", www, "--bind", "not-an-address:x", "--access-log", "off")
    c.eq(rc, 1, "bad bind address")

    # Permission problems: as root, drop to nobody to have any.
    drop = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups") \
        if os.geteuid() == 0 and shutil.which("setpriv") else ()
    locked = os.path.join(tmp, "locked")
    os.makedirs(locked)
    os.chmod(locked, 0o700 if drop else 0o000)
    os.chmod(tmp, 0o755)
    rc, _, err = run("--root", locked, "--bind", "127.0.0.1:0", "--access-log", "off",
                     prefix=drop)
    c.eq(rc, 1, "unreadable root exit code")
    one_line_error(err, "Permission denied", "unreadable root message")
    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
        unpriv = int(f.read())
    if (drop or os.geteuid() != 0) and unpriv > 80:
        rc, _, err = run("--root", www, "--bind", "127.0.0.1:80", "--access-log", "off",
                         prefix=drop)
        c.eq(rc, 1, "privileged port exit code")
        one_line_error(err, "Permission denied", "privileged port message")
    rc, _, err = run("--root", www, "--bind", "127.0.0.1:0", "--access-log",
                     os.path.join(locked, "sub", "access.log"), prefix=drop)
    c.eq(rc, 1, "unwritable access log exit code")
    one_line_error(err, "cannot open access log", "unwritable access log message")

    # --config: key = value lines, command line wins.
    conf = os.path.join(tmp, "wharfd.conf")
    with open(conf, "w") as f:
        f.write("# test\nroot = %s\nbind = 127.0.0.1:0\nlisting = yes\n"
                "cache-control = \"max-age=5\"\nthreads = 1\n" % www)
    os.makedirs(os.path.join(www, "d"))
    with Wharfd(www, "--config", conf) as w:
        st, h, _ = curl(w.base + "/d/")
        c.eq(st, 200, "config file: listing = yes")
        c.eq(curl(w.base + "/")[1].get("cache-control"), "max-age=5", "config file: quoted value")
    with open(conf, "w") as f:
        f.write("colour = blue\n")
    rc, _, err = run("--config", conf)
    c.eq(rc, 2, "unknown config key exit code")
    c.check("unknown key 'colour'" in err, "unknown config key message")

    # Every distribution model serves; IPv6 and Unix listeners beside IPv4.
    for model in ["reuseport", "exclusive", "oneshot", "dispatch"]:
        with Wharfd(www, "--model", model, "--threads", "2") as w:
            c.eq(curl(w.base + "/")[2], b"hi\n", "--model " + model)
            c.eq(w.stop(), 0, "--model %s: clean stop" % model)
    sock = os.path.join(tmp, "wharfd.sock")
    ipv6 = socket.has_ipv6 and os.path.exists("/proc/net/if_inet6")
    extra = ["--bind", "127.0.0.1:0", "--bind", "unix:" + sock] + (["--bind", "[::1]:0"] if ipv6 else [])
    with Wharfd(www, *extra) as w:
        c.eq(curl("http://localhost/", "--unix-socket", sock)[2], b"hi\n", "unix: listener")
        if ipv6:
            m = re.search(r"listening on \[::1\]:(\d+)", w.errors())
            c.check(m and curl("http://[::1]:%s/" % m.group(1))[2] == b"hi\n", "IPv6 listener")

    # wget --mirror of the shipped site, compared with the files.
    public = os.path.join(SOURCE, "public")
    mirror = os.path.join(tmp, "mirror")
    with Wharfd(public) as w:
        subprocess.run(["wget", "-q", "--mirror", "--no-parent", "-nH", "-e", "robots=off",
                        "--reject-regex", "/(guestbook|metrics|healthz|ws/)", "-P", mirror,
                        w.base + "/"], timeout=60)
    fetched = 0
    bad = []
    for dirpath, _, files in os.walk(mirror):
        for name in files:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, mirror)
            src = os.path.join(public, rel)
            if os.path.isfile(src):
                fetched += 1
                if open(src, "rb").read() != open(p, "rb").read():
                    bad.append(rel)
    for must in ["index.html", "about.html", "style.css", "img/logo.svg", "docs/index.html"]:
        c.check(os.path.isfile(os.path.join(mirror, must)), "mirror has " + must)
    c.check(fetched >= 6 and not bad, "mirror matches public/ (%d files, differing %s)" %
            (fetched, bad))

    # A 1 GiB sparse file: right length, right bytes, memory stays flat.
    big = os.path.join(www, "big.bin")
    size = 1 << 30
    marks = {0: b"HEAD", 123_456_789: b"MIDDLE", size - 4: b"TAIL"}
    with open(big, "wb") as f:
        f.truncate(size)
        for off, data in marks.items():
            f.seek(off)
            f.write(data)
    with Wharfd(www, "--threads", "1") as w:
        st, h, _ = curl(w.base + "/big.bin", "-I")
        c.eq(h.get("content-length"), str(size), "1 GiB: Content-Length")
        rss0 = w.rss_kib()
        p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                            w.base + "/big.bin"], capture_output=True, text=True, timeout=120)
        c.eq(p.stdout, "200 %d" % size, "1 GiB: whole body downloaded")
        rss1 = w.rss_kib()
        c.check(rss1 - rss0 < 16 * 1024, "1 GiB: RSS flat (%d -> %d KiB)" % (rss0, rss1))
        for off, data in marks.items():
            st, _, body = curl(w.base + "/big.bin", "-r", "%d-%d" % (off, off + len(data) - 1))
            c.eq((st, body), (206, data), "1 GiB: bytes at %d" % off)
        st, _, body = curl(w.base + "/big.bin", "-r", "500000000-500000009")
        c.eq(body, b"\0" * 10, "1 GiB: a hole reads as zeros")
    os.unlink(big)

    # --sndbuf: a client that asks for a large file and never reads holds at
    # most about twice the value in the server's kernel send queue (the
    # kernel doubles SO_SNDBUF); without it, loopback autotuning lets one
    # such socket hold megabytes. A client that reads still gets it all.
    rc, _, err = run("--sndbuf", "100")
    c.eq(rc, 2, "--sndbuf below 4096 refused")
    with open(os.path.join(www, "8m.bin"), "wb") as f:
        f.write(os.urandom(8 << 20))
    with Wharfd(www, "--threads", "1", "--sndbuf", "65536") as w:
        cl = socket.socket()
        cl.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        cl.connect(("127.0.0.1", w.port))
        cl.sendall(b"GET /8m.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        queued = 0
        for _ in range(20):  # up to 2 s for the server to fill what it may
            time.sleep(0.1)
            queued = max([queued] + [int(f[4].split(":")[0], 16) for f in
                                      (l.split() for l in open("/proc/net/tcp").read()
                                       .splitlines()[1:])
                                      if int(f[1].split(":")[1], 16) == w.port and f[3] == "01"])
        c.check(0 < queued <= 256 << 10,
                "--sndbuf 65536: kernel send queue of a non-reader %d bytes" % queued)
        cl.close()
        p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                            w.base + "/8m.bin"], capture_output=True, text=True, timeout=60)
        c.eq(p.stdout, "200 %d" % (8 << 20), "--sndbuf 65536: a reader gets the whole file")

    # --defer-accept (TCP_DEFER_ACCEPT, 1 s by default): a connection that
    # sends nothing reaches wharfd only after about that long, so its 1 s
    # header timeout starts late; once it sends, it is answered at once.
    # With --defer-accept 0 the same silent connection is closed after 1 s.
    rc, _, err = run("--defer-accept", "soon")
    c.eq(rc, 2, "--defer-accept needs seconds")

    def silent(w, quiet_s, then_s):
        """Opens a silent connection: (closed within quiet_s?, closed within
        quiet_s + then_s?, the socket)."""
        s = socket.create_connection(("127.0.0.1", w.port), timeout=5)
        t0 = time.time()
        s.settimeout(quiet_s)
        try:
            s.recv(100)  # b"" once wharfd closes it
            return True, True, time.time() - t0, s
        except socket.timeout:
            pass
        s.settimeout(then_s)
        try:
            s.recv(100)
            return False, True, time.time() - t0, s
        except socket.timeout:
            return False, False, None, s

    base = ["--threads", "1", "--header-timeout", "1", "--keepalive-timeout", "1"]
    with Wharfd(www, *base, "--defer-accept", "0") as w:
        early, closed, t, s = silent(w, 1.8, 0.1)
        c.check(early and t >= 0.8, "--defer-accept 0: a silent connection is closed after the "
                "1 s header timeout (%s s)" % t)
        s.close()
    with Wharfd(www, *base) as w:
        early, closed, t, s = silent(w, 1.5, 5)
        c.check(not early and closed, "default (--defer-accept 1): a silent connection is closed "
                "after the kernel's hand-over plus the header timeout, not before (%s s)" % t)
        s.close()
        s = socket.create_connection(("127.0.0.1", w.port), timeout=5)
        s.sendall(b"GET /index.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        c.check(s.recv(100).startswith(b"HTTP/1.1 200"), "default: a connection that sends is served")
        s.close()
    with Wharfd(www, *base, "--defer-accept", "10") as w:
        early, closed, t, s = silent(w, 2.5, 0.01)
        c.check(not early, "--defer-accept 10: a silent connection is not timed out (%s s)" % t)
        s.settimeout(5)
        s.sendall(b"GET /index.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        c.check(s.recv(100).startswith(b"HTTP/1.1 200"),
                "--defer-accept 10: the connection is served once it sends")
        s.close()
finally:
    os.chmod(os.path.join(tmp, "locked"), 0o700) if os.path.isdir(os.path.join(tmp, "locked")) \
        else None
    shutil.rmtree(tmp, ignore_errors=True)
c.done()
