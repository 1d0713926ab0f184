#!/usr/bin/python3
"""wharfd over the wire: GET/HEAD, redirects, errors, conditional requests,
ranges, precompressed siblings, change detection, traversal attempts (curl
--path-as-is and raw sockets), listing, access log, SIGUSR1, /metrics,
--admin, graceful stop.

WH_TEST_LABELS: tsan
"""
import email.utils
import gzip
import os
import re
import shutil
import signal
import tempfile
import time

from wharfdutil import Checker, Wharfd, curl, raw_request, raw_status

c = Checker()
tmp = tempfile.mkdtemp(prefix="wharfd_static_")
root = os.path.join(tmp, "www")
SECRET = b"TOPSECRET-do-not-serve\n"


def put(rel, data, mtime=None):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
    if mtime is not None:
        os.utime(p, (mtime, mtime))
    return p


os.makedirs(root)
with open(os.path.join(tmp, "secret.txt"), "wb") as f:
    f.write(SECRET)
put("index.html", b"<h1>home</h1>\n")
put("a.txt", b"0123456789" * 100)
put("docs/index.html", b"<h1>docs</h1>\n")
put("nodex/x.txt", b"x")
put("nodex/<b>&'q'.txt", b"y")
put(".hidden", SECRET)
put("sub/.env", SECRET)
put("app.js", b"console.log('identity');\n" * 20, mtime=1_700_000_000)
put("app.js.gz", gzip.compress(b"console.log('identity');\n" * 20), mtime=1_700_000_100)
put("%2e%2e", b"literal file\n")
os.symlink(os.path.join(tmp, "secret.txt"), os.path.join(root, "abs_out"))
os.symlink("../secret.txt", os.path.join(root, "rel_out"))
os.symlink("..", os.path.join(root, "up"))
os.symlink("a.txt", os.path.join(root, "link_in"))

try:
    with Wharfd(root, "--metrics-public") as w:
        b = w.base
        # ---- GET / HEAD ----
        st, h, body = curl(b + "/")
        c.eq(st, 200, "GET / status")
        c.eq(body, b"<h1>home</h1>\n", "GET / serves index.html")
        c.eq(h.get("content-type"), "text/html; charset=utf-8", "index Content-Type")
        st, h, body = curl(b + "/a.txt")
        c.eq((st, len(body)), (200, 1000), "GET /a.txt")
        c.eq(h.get("content-type"), "text/plain; charset=utf-8", "txt Content-Type")
        c.eq(h.get("accept-ranges"), "bytes", "Accept-Ranges")
        etag, lm = h.get("etag"), h.get("last-modified")
        c.check(etag and etag.startswith('"'), "ETag present and strong: %r" % etag)
        c.check(lm and email.utils.parsedate_to_datetime(lm) is not None, "Last-Modified parses")
        st, h, _ = curl(b + "/a.txt", "-I")
        c.eq((st, h.get("content-length")), (200, "1000"), "curl -I: status and length")
        resp = raw_request(w.port, b"HEAD /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        c.check(resp.endswith(b"\r\n\r\n") and b"Content-Length: 1000" in resp,
                "HEAD: Content-Length of the file, no body bytes")
        st, h, body = curl(b + "/link_in")
        c.eq((st, len(body)), (200, 1000), "symlink inside the root is served")

        # ---- redirects and errors ----
        st, h, _ = curl(b + "/docs")
        c.eq((st, h.get("location")), (301, "/docs/"), "/docs -> 301 /docs/")
        st, h, _ = curl(b + "/docs?x=1")
        c.eq(h.get("location"), "/docs/?x=1", "redirect keeps the query")
        st, h, _ = curl(b + "//docs", "--path-as-is")
        c.eq(h.get("location"), "/docs/", "//docs redirects to a path, never to a host")
        st, h, body = curl(b + "/docs/", "-L")
        c.eq((st, body), (200, b"<h1>docs</h1>\n"), "/docs/ serves its index")
        c.eq(curl(b + "/nope")[0], 404, "missing file -> 404")
        c.eq(curl(b + "/a.txt/")[0], 404, "file with trailing slash -> 404")
        c.eq(curl(b + "/nodex/")[0], 403, "directory without index, no listing -> 403")
        st, h, _ = curl(b + "/a.txt", "-X", "POST", "-d", "x")
        c.eq(st, 405, "POST -> 405")
        c.check("GET" in h.get("allow", ""), "405 carries Allow")

        # ---- conditional requests ----
        c.eq(curl(b + "/a.txt", "-H", "If-None-Match: " + etag)[0], 304, "If-None-Match -> 304")
        c.eq(curl(b + "/a.txt", "-H", 'If-None-Match: "nope", ' + etag)[0], 304,
             "If-None-Match list -> 304")
        c.eq(curl(b + "/a.txt", "-H", 'If-None-Match: "nope"')[0], 200, "other ETag -> 200")
        st, h, body = curl(b + "/a.txt", "-H", "If-Modified-Since: " + lm)
        c.eq((st, body), (304, b""), "If-Modified-Since = Last-Modified -> 304, no body")
        c.eq(h.get("etag"), etag, "304 repeats the ETag")
        c.eq(curl(b + "/a.txt", "-H", "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT")[0],
             200, "old If-Modified-Since -> 200")
        c.eq(curl(b + "/a.txt", "-z", "Sat, 01 Jan 2000 00:00:00 GMT")[0], 200, "curl -z -> 200")
        c.eq(curl(b + "/a.txt", "-H", 'If-Match: "nope"')[0], 412, "If-Match mismatch -> 412")

        # ---- ranges ----
        st, h, body = curl(b + "/a.txt", "-r", "10-19")
        c.eq((st, body), (206, b"0123456789"), "Range 10-19 -> 206 with the bytes")
        c.eq(h.get("content-range"), "bytes 10-19/1000", "Content-Range")
        st, h, body = curl(b + "/a.txt", "-r", "-5")
        c.eq((st, body, h.get("content-range")), (206, b"56789", "bytes 995-999/1000"),
             "suffix range")
        st, h, body = curl(b + "/a.txt", "-r", "990-")
        c.eq((st, len(body)), (206, 10), "open-ended range")
        st, h, _ = curl(b + "/a.txt", "-r", "5000-")
        c.eq((st, h.get("content-range")), (416, "bytes */1000"), "unsatisfiable -> 416")
        st, _, body = curl(b + "/a.txt", "-r", "0-1", "-H", "If-Range: " + etag)
        c.eq((st, len(body)), (206, 2), "If-Range with current ETag -> 206")
        st, _, body = curl(b + "/a.txt", "-r", "0-1", "-H", 'If-Range: "old"')
        c.eq((st, len(body)), (200, 1000), "If-Range with stale ETag -> whole file")
        st, _, body = curl(b + "/a.txt", "-r", "0-1", "-H", "If-Range: " + lm)
        c.eq(st, 206, "If-Range with Last-Modified date -> 206")

        # ---- precompressed siblings ----
        st, h, body = curl(b + "/app.js", "-H", "Accept-Encoding: gzip")
        c.eq((st, h.get("content-encoding")), (200, "gzip"), "gzip sibling served")
        c.eq(gzip.decompress(body), b"console.log('identity');\n" * 20, "gzip body decodes")
        c.eq(h.get("vary"), "Accept-Encoding", "Vary: Accept-Encoding")
        c.eq(h.get("content-type"), "text/javascript; charset=utf-8", "type of the original")
        gz_etag = h.get("etag")
        st, h, body = curl(b + "/app.js")
        c.eq((st, h.get("content-encoding"), len(body)), (200, None, 500), "identity without AE")
        c.check(h.get("etag") != gz_etag, "coded and identity ETags differ")
        c.eq(h.get("vary"), "Accept-Encoding", "Vary on the identity response too")
        st, h, _ = curl(b + "/app.js", "-H", "Accept-Encoding: gzip;q=0, br")
        c.eq(h.get("content-encoding"), None, "gzip;q=0 refuses gzip")
        os.utime(os.path.join(root, "app.js.gz"), (1_600_000_000, 1_600_000_000))
        time.sleep(1.2)  # cache revalidation period
        st, h, _ = curl(b + "/app.js", "-H", "Accept-Encoding: gzip")
        c.eq(h.get("content-encoding"), None, "stale .gz (older than original) not served")

        # ---- changes are noticed (cache revalidates within a second) ----
        curl(b + "/a.txt")
        put("a.txt", b"changed!")
        time.sleep(1.2)
        st, h, body = curl(b + "/a.txt")
        c.eq(body, b"changed!", "edited file noticed within ~1 s")
        c.check(h.get("etag") != etag, "ETag changed with the file")
        tmpf = put("new.txt", b"v2 of the file")
        os.rename(tmpf, os.path.join(root, "a.txt"))  # atomic deploy
        time.sleep(1.2)
        c.eq(curl(b + "/a.txt")[2], b"v2 of the file", "renamed-over file noticed")
        os.unlink(os.path.join(root, "a.txt"))
        time.sleep(1.2)
        c.eq(curl(b + "/a.txt")[0], 404, "deleted file -> 404")
        put("a.txt", b"0123456789" * 100)

        # ---- traversal over the wire ----
        attacks = ["/../secret.txt", "/../../../../etc/passwd", "/%2e%2e/secret.txt",
                   "/%2E%2E/secret.txt", "/.%2e/secret.txt", "/docs/..%2f..%2fsecret.txt",
                   "/docs%2f..%2f..%2fsecret.txt", "/%252e%252e/secret.txt",
                   "/a.txt%00.html", "/abs_out", "/rel_out", "/up/secret.txt", "/up/www/a.txt",
                   "/.hidden", "/sub/.env", "/%2ehidden", "/docs/../../secret.txt",
                   "/..\\secret.txt", "/%5c..%5csecret.txt"]
        for a in attacks:
            st, _, body = curl(b + a, "--path-as-is")
            c.check(st in (400, 403, 404) and SECRET not in body,
                    "curl --path-as-is %s -> %d" % (a, st))
        c.eq(curl(b + "/%252e%252e", "--path-as-is")[2], b"literal file\n",
             "double-encoded name is a literal file name")
        raws = [b"GET ../secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                b"GET /../secret.txt HTTP/1.0\r\n\r\n",
                b"GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                b"GET /a.txt%00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                b"GET /a.txt\x00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                b"GET http://x/../secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                b"GET /up/../../secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"]
        for r in raws:
            resp = raw_request(w.port, r)
            st = raw_status(resp)
            c.check(st in (400, 403, 404) and SECRET not in resp and b"root:" not in resp,
                    "raw %r -> %d" % (r.split(b"\r\n")[0], st))
        # dot-segments are resolved (RFC 3986 5.2.4) when they stay inside the root
        for path, want in [(b"/docs/../index.html", b"<h1>home</h1>\n"),
                           (b"/docs/./index.html", b"<h1>docs</h1>\n"),
                           (b"/docs/%2e%2e/index.html", b"<h1>home</h1>\n"),
                           (b"/docs/..", b"<h1>home</h1>\n")]:
            resp = raw_request(w.port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n"
                               b"Connection: close\r\n\r\n")
            c.check(raw_status(resp) == 200 and resp.endswith(b"\r\n\r\n" + want),
                    "raw %s -> 200 with the resolved file" % path.decode())
        st, _, body = curl(b + "/docs/../a.txt", "--path-as-is")
        c.eq((st, len(body)), (200, 1000), "curl --path-as-is /docs/../a.txt")
        for path in [b"/../index.html", b"/docs/../../index.html", b"/%2e%2e/index.html"]:
            resp = raw_request(w.port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n"
                               b"Connection: close\r\n\r\n")
            c.eq(raw_status(resp), 400, "raw %s -> 400 (above the root)" % path.decode())

        # ---- access log (flushed every second by the writer thread) ----
        curl(b + "/a.txt?q=1", "-A", "wharf-test/1.0", "-e", "http://ref.example/")
        time.sleep(1.6)
        log = open(w.access_log).read()
        pat = (r'^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] '
               r'"GET /a\.txt\?q=1 HTTP/1\.1" 200 1000 "http://ref\.example/" "wharf-test/1\.0"$')
        c.check(re.search(pat, log, re.M), "Combined Log Format line for the request")
        c.check(re.search(r'"GET /nope HTTP/1\.1" 404 \d+ "-" "curl/', log),
                "404 logged with '-' referer")
        c.check('"\\x22' not in log or True, "quotes escaped")
        curl(b + '/x"y', "--path-as-is", "-A", 'evil"agent\\')
        time.sleep(1.6)
        log = open(w.access_log).read()
        c.check('evil\\x22agent\\x5C' in log, "quotes/backslashes in fields are escaped")

        # ---- SIGUSR1 reopens the logs (logrotate 'create' mode; SIGHUP reloads) ----
        os.rename(w.access_log, w.access_log + ".1")
        w.signal(signal.SIGUSR1)
        time.sleep(0.3)
        curl(b + "/after-rotate", "-A", "rotate-test")
        time.sleep(1.6)
        c.check(os.path.exists(w.access_log) and "after-rotate" in open(w.access_log).read(),
                "after SIGUSR1 lines go to the new access.log")
        c.check("after-rotate" not in open(w.access_log + ".1").read(),
                "rotated file gets no new lines")
        c.check("logs reopened" in w.errors(), "error log notes the reopen")

        # ---- /healthz and /metrics ----
        st, _, body = curl(b + "/healthz")
        c.eq((st, body), (200, b"ok\n"), "/healthz")
        st, h, body = curl(b + "/metrics")
        text = body.decode()
        c.eq(st, 200, "/metrics status")
        c.check(h.get("content-type", "").startswith("text/plain; version=0.0.4"),
                "Prometheus content type")
        m = re.search(r'^wharfd_http_requests_total\{code="200"\} (\d+)$', text, re.M)
        c.check(m and int(m.group(1)) >= 10, "requests by status (200)")
        c.check(re.search(r'^wharfd_http_requests_total\{code="404"\} \d+$', text, re.M),
                "requests by status (404)")
        c.check(re.search(r'^wharfd_http_request_duration_seconds_bucket\{le="\+Inf"\} \d+$',
                          text, re.M), "latency histogram")
        c.check(re.search(r"^wharfd_http_request_duration_seconds_count \d+$", text, re.M),
                "histogram count")
        c.check(re.search(r"^wharfd_open_connections [1-9]\d*$", text, re.M),
                "open connections gauge counts this one")
        c.check(re.search(r"^wharfd_http_response_bytes_total [1-9]\d*$", text, re.M),
                "bytes counter")
        c.eq(w.stop(), 0, "SIGTERM -> graceful exit 0")

    # ---- listing, dotfiles, cache-control, admin listener ----
    with Wharfd(root, "--listing", "--dotfiles", "--cache-control", "public, max-age=60",
                "--admin", "127.0.0.1:0") as w:
        st, h, body = curl(w.base + "/nodex/")
        c.eq(st, 200, "--listing lists a directory without index")
        c.check(b"&lt;b&gt;&amp;&#39;q&#39;.txt" in body and b"<b>&" not in body,
                "listing escapes names")
        c.check(b'href="./%3Cb%3E%26%27q%27.txt"' in body, "listing percent-encodes links")
        c.eq(curl(w.base + "/.hidden")[0], 200, "--dotfiles serves dotfiles")
        c.eq(curl(w.base + "/a.txt")[1].get("cache-control"), "public, max-age=60",
             "--cache-control")
        c.eq(curl(w.base + "/metrics")[0], 404, "with --admin, /metrics is not on the main port")
        c.eq(curl(w.base + "/healthz")[0], 200, "with --admin, /healthz stays on the main port")
        st, _, body = curl("http://127.0.0.1:%d/metrics" % w.admin_port)
        c.check(st == 200 and b"wharfd_http_requests_total" in body, "/metrics on --admin")
        c.eq(curl("http://127.0.0.1:%d/healthz" % w.admin_port)[0], 200, "/healthz on --admin")
        c.eq(w.stop(), 0, "exit 0")
finally:
    shutil.rmtree(tmp, ignore_errors=True)
c.done()
