"""examples/json_api, black box: the REST routes through http.client and curl,
JSON errors from the engine itself (error_body), query decoding, and the
streamed upload taken in on_head (401/413 before the body, 64 MiB with
Content-Length and chunked in bounded memory). Skips when json_api was not
built (jansson or zlib missing)."""
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from httputil import Checks, connect, read_responses, wait_eof  # noqa: E402
from whtest import BUILD, Proc, split_addr  # noqa: E402

EXE = os.path.join(BUILD, "json_api")
if not os.path.exists(EXE):
    print("SKIP: %s was not built (needs libjansson-dev and zlib1g-dev: "
          "./scripts/deps.sh test, then re-run cmake)" % EXE)
    sys.exit(0)

TOKEN = "s3cret"
MIB = 1 << 20
t = Checks()


def start(*args):
    p = Proc([EXE, "--host", "127.0.0.1", "--port", "0", "--threads", "2", "--token", TOKEN,
              *args], ready=r"^listening (\S+)")
    return p, split_addr(p.match.group(1))[1]


def vm_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Api:
    """One keep-alive http.client connection; answers as (status, headers, json or bytes)."""

    def __init__(self, port):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def __call__(self, method, path, body=None, headers=None, **kw):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        self.c.request(method, path, body=body, headers=headers or {}, **kw)
        resp = self.c.getresponse()
        data = resp.read()
        if resp.getheader("Connection") == "close":
            self.c.close()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        if hdrs.get("content-type") == "application/json":
            data = json.loads(data)
        return resp.status, hdrs, data


def curl(*args, data=None):
    """(status, content type, body bytes) from curl."""
    r = subprocess.run(["curl", "-sS", "--max-time", "30", "-w", "\n%{http_code} %{content_type}",
                        *args], input=data, capture_output=True)
    body, _, tail = r.stdout.rpartition(b"\n")
    code, _, ctype = tail.decode().partition(" ")
    return int(code or 0), ctype, body


def is_error(res, status):
    """A JSON error of the documented shape with this status."""
    st, hdrs, body = res
    return (st == status and hdrs.get("content-type") == "application/json" and
            isinstance(body, dict) and body.get("error", {}).get("status") == status and
            isinstance(body["error"].get("message"), str))


def raw(port, data, n=1):
    """Sends raw bytes; returns (responses, closed by the server)."""
    s = connect(port, timeout=10)
    s.sendall(data)
    res, eof = read_responses(s, n, timeout=10)
    closed = eof or wait_eof(s, 5)
    s.close()
    return res, closed


def refused_upload(port, head, pieces):
    """Sends head, then pieces while the server reads them; the server answers
    before the end and closes. Returns the response (status, headers, body) or None."""
    s = connect(port, timeout=10)
    s.sendall(head)
    try:
        for piece in pieces:
            s.sendall(piece)
    except OSError:
        pass  # it answered and closed: what it sent is still queued for us
    try:
        res, _ = read_responses(s, 1, timeout=10)
    except OSError:
        res = []
    s.close()
    return res[0] if res else None


p, port = start()
base = "http://127.0.0.1:%d" % port
api = Api(port)

# ---- create, list, fetch ----
items = [{"name": "Red Apple", "price": 1.25, "tags": ["fruit", "red"]},
         {"name": "Banana", "price": 0.5, "tags": ["fruit", "yellow"]},
         {"name": "Pineapple juice", "price": 3, "tags": ["drink"]}]
ids = []
for it in items[:2]:
    st, hdrs, body = api("POST", "/items", it)
    ok = st == 201 and isinstance(body, dict) and hdrs.get("location") == "/items/%d" % body["id"]
    t.check(ok and body["name"] == it["name"] and body["tags"] == it["tags"] and
            body["price"] == it["price"] and "created" in body, "http.client POST /items -> 201")
    ids.append(body["id"] if ok else None)
code, ctype, out = curl("-i", "-H", "Content-Type: application/json; charset=utf-8",
                        "--data-binary", json.dumps(items[2]), base + "/items")
head, _, js = out.partition(b"\r\n\r\n")
body = json.loads(js) if code == 201 else {}
t.check(code == 201 and ctype == "application/json" and
        ("\r\nLocation: /items/%d\r\n" % body.get("id", -1)).encode() in head + b"\r\n",
        "curl POST /items (media type with a parameter) -> 201 + Location")
ids.append(body.get("id"))
t.check(len(set(ids)) == 3 and None not in ids, "three distinct ids %s" % ids)
a, b, c = ids


def listed(query):
    st, _, body = api("GET", "/items" + query)
    return [i["id"] for i in body["items"]] if st == 200 else st, body


t.check(listed("")[0] == ids and listed("")[1]["total"] == 3, "list all")
t.check(listed("?limit=2")[0] == [a, b], "limit=2")
got, body = listed("?limit=1&offset=1")
t.check(got == [b] and body["total"] == 3 and body["offset"] == 1, "limit=1&offset=1")
t.check(listed("?offset=5")[0] == [], "offset past the end")
t.check(listed("?tag=fruit")[0] == [a, b], "tag=fruit")
t.check(listed("?tag=fruit&tag=red")[0] == [a], "tag=fruit&tag=red (every tag must match)")
t.check(listed("?q=APPLE")[0] == [a, c], "q=APPLE, case-insensitive")
t.check(listed("?q=apple+j%75ice")[0] == [c], "q with '+' and a %-escape decoded")
t.check(listed("?q=apple&tag=fruit&limit=5")[0] == [a], "q and tag together")
code, ctype, out = curl(base + "/items?tag=drink")
t.check(code == 200 and [i["id"] for i in json.loads(out)["items"]] == [c], "curl list tag=drink")
for q in ("?q=%zz", "?tag=%4", "?limit=1&x=%G0"):
    t.check(is_error(api("GET", "/items" + q), 400), "malformed escape %s -> 400" % q)
for q in ("?limit=0", "?limit=abc", "?limit=101", "?offset=-1"):
    t.check(is_error(api("GET", "/items" + q), 400), "bad number %s -> 400" % q)

st, _, body = api("GET", "/items/%d" % a)
t.check(st == 200 and body["id"] == a and body["name"] == "Red Apple", "GET /items/%d" % a)
enc = "".join("%%%02X" % ord(ch) for ch in str(a))
st, _, body2 = api("GET", "/items/" + enc)
t.check(st == 200 and body2 == body, "GET /items/%s == /items/%d (router decodes :id)" % (enc, a))
code, ctype, out = curl(base + "/items/" + enc)
t.check(code == 200 and json.loads(out) == body, "curl GET /items/%s" % enc)

# ---- errors: ours and the engine's, all JSON ----
t.check(is_error(api("GET", "/items/999999"), 404), "unknown item -> 404")
t.check(is_error(api("GET", "/items/abc"), 400), "non-numeric id -> 400")
t.check(is_error(api("GET", "/nowhere"), 404), "unknown path -> engine 404 as JSON")
res = api("PATCH", "/items")
t.check(is_error(res, 405) and "POST" in res[1].get("allow", ""), "PATCH /items -> 405 + Allow")
res = api("GET", "/items/%d/image" % a)
t.check(is_error(res, 405) and res[1].get("allow", "").startswith("PUT"),
        "GET on the upload route -> 405, Allow: PUT")
t.check(is_error(api("POST", "/items", b'{"name":"x","price":1}',
                     {"Content-Type": "text/plain"}), 415), "text/plain -> 415")
t.check(is_error(api("POST", "/items", b'{"name":"x","price":1}'), 415), "no Content-Type -> 415")
st, hdrs, body = api("POST", "/items", b'{"name": "x", "price": }',
                     {"Content-Type": "application/json"})
t.check(is_error((st, hdrs, body), 400) and body["error"].get("position") == 24 and
        body["error"].get("line") == 1 and body["error"].get("column") == 24 and
        "invalid JSON" in body["error"]["message"],
        "invalid JSON -> 400 with the parser's message and position (%s)" % body)
for bad in ({"price": 1}, {"name": "x"}, {"name": "", "price": 1}, {"name": 5, "price": 1},
            {"name": "x", "price": -1}, {"name": "x", "price": "1"}, {"name": "x", "price": 1,
            "extra": True}, {"name": "x", "price": 1, "tags": "t"},
            {"name": "x", "price": 1, "tags": [1]}, [1, 2]):
    t.check(is_error(api("POST", "/items", bad), 422), "invalid item %s -> 422" % json.dumps(bad))
code, ctype, out = curl("-H", "Content-Type: application/json", "--data-binary",
                        '{"price": 2}', base + "/items")
t.check(code == 422 and ctype == "application/json" and
        json.loads(out)["error"]["status"] == 422, "curl: missing name -> 422")
res, closed = raw(port, b"GET /items HTTP/1.1\r\n\r\n")
t.check(len(res) == 1 and res[0][0] == 400 and
        res[0][1].get("content-type") == "application/json" and
        json.loads(res[0][2]) == {"error": {"status": 400, "message": "Bad Request"}} and closed,
        "malformed request (no Host) -> 400 JSON + close")
res, closed = raw(port, b"POST /items HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 1000000\r\n\r\n")
t.check(len(res) == 1 and res[0][0] == 413 and
        json.loads(res[0][2])["error"]["status"] == 413 and closed,
        "item body over max_body -> engine 413 JSON")

# ---- the store under concurrent writers on both worker threads ----
made, lock = [], threading.Lock()


def writer(k):
    w = Api(port)
    for i in range(10):
        st, _, body = w("POST", "/items", {"name": "w%d-%d" % (k, i), "price": i})
        with lock:
            made.append(body["id"] if st == 201 else None)


ths = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
for th in ths:
    th.start()
for th in ths:
    th.join()
t.check(len(made) == 60 and None not in made and len(set(made)) == 60 and
        listed("?q=w&limit=100")[1]["total"] == 60, "60 concurrent creates, 60 distinct ids")

# ---- delete ----
st, _, body = api("DELETE", "/items/%d" % b)
t.check(st == 204 and body == b"", "DELETE -> 204")
t.check(is_error(api("DELETE", "/items/%d" % b), 404), "DELETE again -> 404")
t.check(is_error(api("GET", "/items/%d" % b), 404), "GET deleted -> 404")
code, ctype, _ = curl("-X", "DELETE", base + "/items/%d" % c)
t.check(code == 204, "curl DELETE -> 204")

# ---- the streamed upload ----
up = "/items/%d/image" % a
auth = {"Authorization": "Bearer " + TOKEN}
head = ("PUT %s HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n" % (up, 8 * MIB)).encode()
res, closed = raw(port, head + b"\r\n")
t.check(len(res) == 1 and res[0][0] == 401 and "bearer" in res[0][1].get("www-authenticate",
        "").lower() and json.loads(res[0][2])["error"]["status"] == 401 and closed,
        "no token: 401 from the head alone (no body sent), then the connection closes")
res, closed = raw(port, head + b"Expect: 100-continue\r\nAuthorization: Bearer nope\r\n\r\n")
t.check(len(res) == 1 and res[0][0] == 401 and closed,
        "wrong token with Expect: 401, no 100 Continue first")
res, closed = raw(port, ("PUT %s HTTP/1.1\r\nHost: a\r\nAuthorization: bearer %s\r\n"
                         "Content-Length: %d\r\n\r\n" % (up, TOKEN, 300 * MIB)).encode())
t.check(len(res) == 1 and res[0][0] == 413 and closed, "declared 300 MiB: 413 before the body")
res, closed = raw(port, ("PUT /items/999999/image HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer %s"
                         "\r\nContent-Length: 10\r\n\r\n" % TOKEN).encode())
t.check(len(res) == 1 and res[0][0] == 404 and closed, "upload for an unknown item: 404")
st, _, body = api("PUT", up, b"hello, image", auth)
small_sum = "%08x" % zlib.crc32(b"hello, image")
t.check(st == 200 and body == {"id": a, "bytes": 12, "checksum": small_sum},
        "http.client small upload")
st, _, body = api("PUT", "/items/%s/image" % enc, b"", auth)
t.check(st == 200 and body["bytes"] == 0 and body["checksum"] == "00000000",
        "empty upload, %-encoded id")
parts = [b"x" * 1000, b"", b"y" * 70000, b"z"]
st, _, body = api("PUT", up, iter(parts), {**auth, "Transfer-Encoding": "chunked"},
                  encode_chunked=True)
t.check(st == 200 and body["bytes"] == 71001 and
        body["checksum"] == "%08x" % zlib.crc32(b"".join(parts)), "http.client chunked upload")
code, _, _ = curl("-X", "PUT", "--data-binary", "@-", base + up, data=b"q" * (2 * MIB))
t.check(code == 401, "curl 2 MiB without a token -> 401")

block = os.urandom(MIB)
crc = 0
for i in range(64):
    crc = zlib.crc32(block, crc)
want = {"id": a, "bytes": 64 * MIB, "checksum": "%08x" % crc}
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "image.bin")
    with open(path, "wb") as f:
        for i in range(64):
            f.write(block)
    rss0 = vm_kb(p.pid, "VmRSS")
    code, ctype, out = curl("-X", "PUT", "-H", "Authorization: Bearer " + TOKEN,
                            "--data-binary", "@" + path, base + up)
    t.check(code == 200 and json.loads(out) == want, "curl 64 MiB upload (Content-Length): %s"
            % out[:200])
# Chunked, from a generator: curl -T - never knows the size.
cp = subprocess.Popen(["curl", "-sS", "--max-time", "30", "-T", "-", "-H",
                       "Authorization: Bearer " + TOKEN, base + up],
                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)
try:
    for i in range(64):
        cp.stdin.write(block)
except BrokenPipeError:
    pass
out, _ = cp.communicate()
t.check(cp.returncode == 0 and json.loads(out) == want,
        "curl 64 MiB chunked upload: %s" % out[:200])
hwm = vm_kb(p.pid, "VmHWM")
t.check(hwm - rss0 < 32 * 1024, "RSS peak grew %d KiB over 2 x 64 MiB uploads (< 32 MiB)"
        % (hwm - rss0))
st, _, body = api("GET", "/items/%d" % a)
t.check(st == 200 and body.get("image") == {"bytes": 64 * MIB, "checksum": want["checksum"]},
        "the item records its image")
code, ctype, out = curl(base + "/items/%d" % a)
t.check(code == 200 and json.loads(out)["name"] == "Red Apple", "still serving after the uploads")

api.c.close()
err = p.stop(signal.SIGTERM)
t.check(p.proc.returncode == 0 and "Sanitizer" not in err and "runtime error" not in err,
        "graceful stop on SIGTERM, exit 0, no sanitizer report %s" % err[-3000:])

# A chunked body has no declared length: the limit applies as it streams in.
p, port = start("--max-upload", str(MIB))
api = Api(port)
api("POST", "/items", {"name": "small", "price": 1})
res = refused_upload(port, ("PUT /items/1/image HTTP/1.1\r\nHost: a\r\n"
                            "Authorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n\r\n"
                            % TOKEN).encode(),
                     [b"10000\r\n" + b"a" * 65536 + b"\r\n"] * 24 + [b"0\r\n\r\n"])
t.check(res is not None and res[0] == 413 and json.loads(res[2])["error"]["status"] == 413,
        "chunked upload over --max-upload -> 413 mid-body")
api.c.close()
err = p.stop(signal.SIGTERM)
t.check(p.proc.returncode == 0 and "Sanitizer" not in err and "runtime error" not in err,
        "second server: exit 0, no sanitizer report %s" % err[-3000:])

t.exit()
