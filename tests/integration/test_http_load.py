"""HTTP engine under load: short, bounded wrk and h2load (--h1) runs against
examples/hello must finish with zero socket errors and zero non-2xx answers.
Speed is not checked here (bench/http_plaintext.sh measures it)."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from httputil import Checks, Hello  # noqa: E402

t = Checks()

PIPE_LUA = os.path.join(os.environ.get("WH_SOURCE_DIR", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")), "bench", "pipeline.lua")


def run(cmd, timeout=60):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


for model in ("reuseport", "dispatch"):
    with Hello("--threads", "2", "--no-pin", "--model", model) as h:
        url = "http://127.0.0.1:%d/plaintext" % h.port
        rc, out = run(["wrk", "-t1", "-c32", "-d2s", url])
        m = re.search(r"(\d+) requests in", out)
        n = int(m.group(1)) if m else 0
        t.check(rc == 0 and n > 0 and "Socket errors" not in out and "Non-2xx" not in out,
                "wrk %s: %d requests, no errors" % (model, n))
        if os.path.exists(PIPE_LUA):
            rc, out = run(["wrk", "-t1", "-c16", "-d2s", "-s", PIPE_LUA, url, "--", "16"])
            m = re.search(r"(\d+) requests in", out)
            n = int(m.group(1)) if m else 0
            t.check(rc == 0 and n > 0 and "Socket errors" not in out and "Non-2xx" not in out,
                    "wrk pipelined x16 %s: %d requests, no errors" % (model, n))
        rc, out = run(["h2load", "--h1", "-n", "20000", "-c", "20", "-m", "4", url])
        ok = "20000 succeeded, 0 failed, 0 errored" in out and re.search(
            r"status codes: 20000 2xx, 0 3xx, 0 4xx, 0 5xx", out)
        t.check(rc == 0 and bool(ok), "h2load --h1 %s: 20000 requests, all 2xx" % model)
        if not ok:
            print(out)
        rc, out = run(["h2load", "--h1", "-n", "2000", "-c", "10",
                       "http://127.0.0.1:%d/" % h.port])
        t.check("2000 succeeded, 0 failed, 0 errored" in out, "h2load --h1 GET /")
        t.check(h.stop() == 0, "graceful stop after load (%s)" % model)

t.exit()
