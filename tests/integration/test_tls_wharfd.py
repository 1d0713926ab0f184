"""wharfd over TLS: https:// listeners with certificates from a CA this test
makes (openssl CLI), checked with curl, openssl s_client, Python's ssl
module and python3-websockets.

- curl --cacert/--resolve: pages, a 5 MB file (read+SSL_write path) and
  keep-alive; plain HTTP on the TLS port gets a clear-text 400;
- s_client: TLS 1.3 and 1.2 accepted, 1.1 and 1.0 refused (counted as
  "version"), ALPN http/1.1 (and none for h2 only), SNI picks the
  certificate by name (exact, wildcard, unknown -> default), resumption with
  -sess_out/-sess_in for 1.2 and 1.3, a renegotiation attempt is refused
  and the server goes on;
- Python ssl: stalled handshakes are cut by the header timeout while a
  normal client is served; garbage, a truncated record after the handshake
  and EOF mid-handshake end in a clean close, counted by reason;
- wss:// echo (python3-websockets with an SSL context);
- --redirect-https (308 to the https URL) and --hsts;
- the access log's TLS field and /metrics' TLS counters; OCSP stapling;
- SIGHUP reloads the certificate (new connections get the new one, an open
  keep-alive connection goes on); a bad new one keeps the old;
- startup errors: one line naming the file (missing key, unreadable
  certificate, key that does not match, https without a certificate).
"""
import asyncio
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from tlsutil import shared_pki  # noqa: E402
from wharfdutil import WHARFD, Checker, Wharfd, curl  # noqa: E402

c = Checker()
pki = shared_pki()  # the CA wharfdutil's curl trusts for https:// URLs
main_crt, main_key = pki.issue("main", ["localhost"], ips=["127.0.0.1"])
wild_crt, wild_key = pki.issue("wild", ["*.example.test", "other.test"], rsa=True)
root = os.path.join(pki.dir, "root")
os.makedirs(root)
with open(os.path.join(root, "index.html"), "w") as f:
    f.write("hello over tls\n")
big = os.urandom(5 * 1000 * 1000)
with open(os.path.join(root, "big.bin"), "wb") as f:
    f.write(big)


def s_client(port, *args, stdin=b"", timeout=10):
    """Runs openssl s_client against 127.0.0.1:port; returns its output."""
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile", pki.ca, *args]
    p = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    return p.stdout.decode(errors="replace")


def metric(w, name, label):
    _, _, body = curl(w.base + "/metrics")
    m = re.search(r"^%s\{%s\} (\d+)$" % (re.escape(name), re.escape(label)), body.decode(), re.M)
    return int(m.group(1)) if m else -1


def get_ok(port, ctx, host="localhost"):
    """One request over a fresh TLS connection; True on a 200."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    return data.startswith(b"HTTP/1.1 200")


def closed_within(s, seconds):
    """True if the server closes s (EOF or reset) within seconds."""
    s.settimeout(seconds)
    try:
        while True:
            if not s.recv(4096):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def basics(w):
    st, h, body = curl("https://localhost:%d/" % w.port, "--resolve",
                       "localhost:%d:127.0.0.1" % w.port, "--cacert", pki.ca)
    c.eq((st, body), (200, b"hello over tls\n"), "curl --cacert --resolve: page over TLS")
    st, _, body = curl(w.base + "/big.bin")
    c.check(st == 200 and body == big, "5 MB file over TLS arrives intact")
    p = subprocess.run(["curl", "-sS", "--cacert", pki.ca, "-o", "/dev/null", "-o", "/dev/null",
                        "-w", "%{num_connects} ", w.base + "/", w.base + "/big.bin"],
                       stdout=subprocess.PIPE, timeout=60)
    c.eq(p.stdout.decode().split(), ["1", "0"], "keep-alive: two requests, one TLS connection")
    p = subprocess.run(["curl", "-sS", "http://127.0.0.1:%d/" % w.port], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=10)
    c.check(b"speaks HTTPS" in p.stdout, "plain HTTP on the TLS port -> clear-text 400")
    with socket.create_connection(("127.0.0.1", w.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        c.check(s.recv(100).startswith(b"HTTP/1.1 400"), "... with a 400 status line")


def versions_alpn_sni(w):
    out = s_client(w.port, "-tls1_3", "-servername", "localhost")
    c.check("New, TLSv1.3" in out and "Verify return code: 0 (ok)" in out,
            "s_client -tls1_3: TLS 1.3, certificate verifies")
    out = s_client(w.port, "-tls1_2")
    c.check("New, TLSv1.2" in out and "ECDHE" in out, "s_client -tls1_2: TLS 1.2 with ECDHE")
    before = metric(w, "wharfd_tls_handshake_failures_total", 'reason="version"')
    for v in ("-tls1_1", "-tls1"):
        # SECLEVEL=0 so the client really offers the old version.
        out = s_client(w.port, v, "-cipher", "DEFAULT@SECLEVEL=0")
        c.check("Cipher is (NONE)" in out or "handshake failure" in out or "alert" in out,
                "s_client %s refused" % v)
    c.eq(metric(w, "wharfd_tls_handshake_failures_total", 'reason="version"'), before + 2,
         "refusals counted as reason=version")
    out = s_client(w.port, "-alpn", "h2,http/1.1")
    c.check("ALPN protocol: http/1.1" in out, "ALPN: http/1.1 chosen from h2,http/1.1")
    out = s_client(w.port, "-alpn", "h2")
    c.check("No ALPN negotiated" in out and "New, TLS" in out, "ALPN h2 only: no ALPN, no failure")
    for name, want in (("a.example.test", "CN = *.example.test"),
                       ("other.test", "CN = *.example.test"),
                       ("localhost", "CN = localhost"),
                       ("example.test", "CN = localhost"),
                       ("x.y.example.test", "CN = localhost"),
                       ("unknown.test", "CN = localhost")):
        out = s_client(w.port, "-servername", name)
        m = re.search(r"^subject=(.*)$", out, re.M)
        c.check(m and want in m.group(1), "SNI %s -> %s (got %s)" % (name, want,
                                                                  m.group(1) if m else None))
    for v in ("-tls1_2", "-tls1_3"):
        sess = os.path.join(pki.dir, "sess" + v)
        s_client(w.port, v, "-sess_out", sess, stdin=b"")
        # TLS 1.3 tickets come after the handshake: keep the first client a moment.
        if v == "-tls1_3" and (not os.path.exists(sess) or os.path.getsize(sess) == 0):
            subprocess.run("sleep 0.5 | openssl s_client -connect 127.0.0.1:%d -CAfile %s %s "
                           "-sess_out %s" % (w.port, pki.ca, v, sess), shell=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
        out = s_client(w.port, v, "-sess_in", sess)
        c.check("Reused, TLSv1." in out, "resumption %s: Reused" % v)
    c.check(metric(w, "wharfd_tls_handshakes_total", 'resumed="yes"') >= 2,
            "/metrics counts resumed handshakes")
    # Client-initiated renegotiation (TLS 1.2, s_client's "R" command).
    out = subprocess.run("(echo R; sleep 1) | openssl s_client -connect 127.0.0.1:%d -tls1_2 "
                         "-CAfile %s" % (w.port, pki.ca), shell=True, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=15).stdout.decode(errors="replace")
    c.check("RENEGOTIATING" in out and "Reused" not in out.split("RENEGOTIATING")[-1],
            "renegotiation attempt refused")
    c.check(get_ok(w.port, pki.client_context()), "server still serves after the renegotiation")


def bad_clients(w):
    ctx = pki.client_context()
    # Stalled handshakes: half a ClientHello, then nothing.
    stalled = []
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", w.port), timeout=5)
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        stalled.append(s)
    t0 = time.time()
    c.check(all(get_ok(w.port, ctx) for _ in range(5)), "20 stalled handshakes block nobody")
    c.check(time.time() - t0 < 5, "... served without waiting for them")
    c.check(all(closed_within(s, 6) for s in stalled), "stalled handshakes cut by the timeout (1 s)")
    for s in stalled:
        s.close()
    # Garbage instead of a ClientHello.
    before = metric(w, "wharfd_tls_handshake_failures_total", 'reason="protocol"')
    for junk in (os.urandom(3000), b"\x16\x03\x01\x00\x05hello", b"\x16\x03\x03\xff\xff" + b"A" * 100):
        with socket.create_connection(("127.0.0.1", w.port), timeout=5) as s:
            s.sendall(junk)
            c.check(closed_within(s, 3), "garbage (%d bytes) -> closed" % len(junk))
    c.check(metric(w, "wharfd_tls_handshake_failures_total", 'reason="protocol"') >= before + 2,
            "garbage counted as reason=protocol")
    # EOF mid-handshake.
    with socket.create_connection(("127.0.0.1", w.port), timeout=5) as s:
        s.sendall(b"\x16\x03\x01\x02\x00\x01")
    # A truncated record after a good handshake: encrypt a request through a
    # memory BIO, send half of its record, close.
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with socket.create_connection(("127.0.0.1", w.port), timeout=5) as s:
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                s.sendall(outgoing.read())
                data = s.recv(65536)
                if not data:
                    break
                incoming.write(data)
        s.sendall(outgoing.read())
        obj.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        rec = outgoing.read()
        s.sendall(rec[: len(rec) // 2])
        s.shutdown(socket.SHUT_WR)
        c.check(closed_within(s, 5), "truncated record then EOF -> closed")
    c.check(get_ok(w.port, ctx), "normal client served after the bad ones")


async def wss_echo(port, ctx):
    import websockets
    async with websockets.connect("wss://localhost:%d/ws/echo" % port, ssl=ctx,
                                  compression=None, max_size=None) as ws:
        await ws.send("hello")
        a = await ws.recv()
        payload = os.urandom(300000)
        await ws.send(payload)
        b = await ws.recv()
        return a == "hello" and b == payload


def main():
    w = Wharfd(root, "--bind", "https://127.0.0.1:0", "--tls-cert", main_crt, "--tls-key",
               main_key, "--tls-cert", wild_crt, "--tls-key", wild_key, "--header-timeout", "1",
               "--metrics-public", "--ws-echo", "--access-log-tls", "--hsts", "600",
               "--log-level", "debug")
    w.base = "https://127.0.0.1:%d" % w.port
    try:
        basics(w)
        versions_alpn_sni(w)
        bad_clients(w)
        st, h, _ = curl(w.base + "/")
        c.eq(h.get("strict-transport-security"), "max-age=600", "--hsts on TLS responses")
        ok = asyncio.run(wss_echo(w.port, pki.client_context()))
        c.check(ok, "wss:// echo: text and a 300 kB binary message")
        c.check(metric(w, "wharfd_tls_requests_total",
                       'version="TLSv1.3",cipher="TLS_AES_256_GCM_SHA384"') > 0,
                "/metrics: requests by TLS version and cipher")
        c.check("TLS handshake from" in w.errors(), "failed handshakes logged at debug level")

        # Reload: a keep-alive connection opened before SIGHUP goes on.
        ctx = pki.client_context()
        keep = ctx.wrap_socket(socket.create_connection(("127.0.0.1", w.port), timeout=5),
                               server_hostname="localhost")
        old_serial = keep.getpeercert()["serialNumber"]
        new_crt, new_key = pki.issue("main2", ["localhost"], ips=["127.0.0.1"])
        shutil.copy(new_crt, main_crt)
        shutil.copy(new_key, main_key)
        w.signal(signal.SIGHUP)
        deadline = time.time() + 5
        while "TLS certificates reloaded" not in w.errors() and time.time() < deadline:
            time.sleep(0.05)
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", w.port), timeout=5),
                             server_hostname="localhost") as s2:
            c.check(s2.getpeercert()["serialNumber"] != old_serial,
                    "SIGHUP: new connections get the new certificate")
        keep.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        c.check(keep.recv(100).startswith(b"HTTP/1.1 200"), "SIGHUP: open connection goes on")
        keep.close()
        with open(main_crt, "w") as f:
            f.write("not a certificate\n")
        w.signal(signal.SIGHUP)
        deadline = time.time() + 5
        while "TLS reload failed" not in w.errors() and time.time() < deadline:
            time.sleep(0.05)
        c.check("TLS reload failed" in w.errors() and main_crt in w.errors(),
                "bad certificate on reload: logged with its file name")
        c.check(get_ok(w.port, ctx), "bad certificate on reload: the old one still serves")
        shutil.copy(new_crt, main_crt)
        c.eq(w.stop(), 0, "graceful exit 0")
        with open(w.access_log) as f:
            lines = f.read().splitlines()
        c.check(lines and all(re.search(r" (TLSv1\.[23]/\S+|-)$", ln) for ln in lines),
                "--access-log-tls: each line ends with version/cipher")
    finally:
        w.cleanup()

    # Redirect: a plain listener beside the TLS one.
    w = Wharfd(root, "--bind", "127.0.0.1:0", "--bind", "https://127.0.0.1:0", "--tls-cert",
               main_crt, "--tls-key", main_key, "--redirect-https", "8443")
    try:
        st, h, _ = curl("http://127.0.0.1:%d/a/b?c=d" % w.port, "-H", "Host: example.org:80")
        c.eq((st, h.get("location")), (308, "https://example.org:8443/a/b?c=d"),
             "--redirect-https: 308 to the https URL")
        st, _, _ = curl("http://127.0.0.1:%d/" % w.port, "-H", "Host: a/b")
        c.eq(st, 400, "--redirect-https: a Host that is no host name -> 400")
        tls_port = int(re.findall(r"listening on 127\.0\.0\.1:(\d+) \(TLS\)", w.errors())[0])
        st, h, _ = curl("https://127.0.0.1:%d/" % tls_port)
        c.check(st == 200 and "strict-transport-security" not in h,
                "TLS listener answers (no HSTS without --hsts)")
    finally:
        w.cleanup()

    # The same keys in a config file.
    conf = os.path.join(pki.dir, "wharfd.conf")
    with open(conf, "w") as f:
        f.write("tls-cert = %s\ntls-key = %s\nhsts = 60\ntls-min-version = 1.3\n"
                % (main_crt, main_key))
    w = Wharfd(root, "--config", conf, "--bind", "https://127.0.0.1:0")
    try:
        st, h, _ = curl("https://127.0.0.1:%d/" % w.port)
        c.eq((st, h.get("strict-transport-security")), (200, "max-age=60"),
             "config file: tls-cert, tls-key, hsts")
        out = s_client(w.port, "-tls1_2")
        c.check("New, TLSv1.2" not in out, "config file: tls-min-version = 1.3 refuses TLS 1.2")
    finally:
        w.cleanup()

    # OCSP stapling from a file (an OCSP response made with openssl ocsp).
    index = os.path.join(pki.dir, "index.txt")
    open(index, "w").close()
    resp = os.path.join(pki.dir, "ocsp.der")
    subprocess.run(["openssl", "ocsp", "-index", index, "-rsigner", pki.ca, "-rkey", pki.ca_key,
                    "-CA", pki.ca, "-issuer", pki.ca, "-cert", main_crt, "-respout", resp,
                    "-ndays", "1"], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=30)
    w = Wharfd(root, "--bind", "https://127.0.0.1:0", "--tls-cert", main_crt, "--tls-key",
               main_key, "--tls-ocsp", resp)
    try:
        for v in ("-tls1_3", "-tls1_2"):
            out = s_client(w.port, v, "-status")
            c.check("OCSP Response Status: successful" in out, "OCSP response stapled (%s)" % v)
    finally:
        w.cleanup()
    w = Wharfd(root, "--bind", "https://127.0.0.1:0", "--tls-cert", main_crt, "--tls-key",
               main_key)
    try:
        out = s_client(w.port, "-status")
        c.check("OCSP response: no response sent" in out, "no --tls-ocsp: no staple")
    finally:
        w.cleanup()

    # PROXY header before the ClientHello (a balancer in TCP mode in front).
    w = Wharfd(root, "--bind", "https://127.0.0.1:0", "--tls-cert", main_crt, "--tls-key",
               main_key, "--proxy-protocol", "--access-log-tls")
    try:
        for hdr in (b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 443\r\n", b""):
            raw = socket.create_connection(("127.0.0.1", w.port), timeout=5)
            raw.sendall(hdr)
            try:
                with pki.client_context().wrap_socket(raw, server_hostname="localhost") as s:
                    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    ok = s.recv(100).startswith(b"HTTP/1.1 200")
            except (ssl.SSLError, OSError):
                ok = False
            c.eq(ok, bool(hdr), "PROXY + TLS: %s" % ("header then TLS served" if hdr
                                                      else "TLS without the header refused"))
        time.sleep(1.5)  # the access log is flushed every second
        with open(w.access_log) as f:
            log = f.read()
        c.check(re.search(r"^203\.0\.113\.7 .* TLSv1\.3/\S+$", log, re.M),
                "PROXY + TLS: the client from the header, the TLS field in the log")
    finally:
        w.cleanup()

    # Startup errors: one line that names the file; exit status 1.
    def start_err(*args):
        p = subprocess.run([WHARFD, "--root", root, "--bind", "https://127.0.0.1:0", *args],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        return p.returncode, p.stderr.decode().strip()

    missing = os.path.join(pki.dir, "missing.key")
    rc, err = start_err("--tls-cert", main_crt, "--tls-key", missing)
    c.check(rc != 0 and missing in err and len(err.splitlines()) == 1, "missing key: " + err)
    unreadable = os.path.join(pki.dir, "unreadable.pem")
    shutil.copy(main_crt, unreadable)
    os.chmod(unreadable, 0)
    if os.geteuid() != 0:  # root reads it anyway
        rc, err = start_err("--tls-cert", unreadable, "--tls-key", main_key)
        c.check(rc != 0 and unreadable in err, "unreadable certificate: " + err)
    rc, err = start_err("--tls-cert", main_crt, "--tls-key", wild_key)
    c.check(rc != 0 and "does not match" in err and wild_key in err and main_crt in err,
            "mismatched key: " + err)
    rc, err = start_err("--tls-cert", root, "--tls-key", main_key)
    c.check(rc != 0 and root in err, "certificate that is a directory: " + err)
    rc, err = start_err()
    c.check(rc != 0 and "--tls-cert" in err, "https without a certificate: " + err)
    rc, err = start_err("--tls-cert", main_crt)
    c.check(rc != 0 and "--tls-key" in err, "certificate without key: " + err)

    # examples/https_hello: the library's TLS without wharfd.
    ex = os.path.join(os.path.dirname(WHARFD), "https_hello")
    if os.path.exists(ex):
        p = subprocess.Popen([ex, main_crt, main_key, "127.0.0.1:0"], stdout=subprocess.PIPE)
        try:
            port = int(p.stdout.readline().decode().rsplit(":", 1)[1])
            st, _, body = curl("https://localhost:%d/" % port, "--resolve",
                               "localhost:%d:127.0.0.1" % port)
            c.eq((st, body), (200, b"Hello over TLSv1.3\n"), "examples/https_hello")
        finally:
            p.send_signal(signal.SIGINT)
            c.eq(p.wait(timeout=15), 0, "examples/https_hello stops cleanly")
    c.done()


main()
