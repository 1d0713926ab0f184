#!/usr/bin/env python3
"""Guestbook abuse (issue 20, defect 5), on loopback against wharfd's
embedded store, and on a Redis of our own for the counter's Redis path:

  - a cross-site POST (Origin or Referer naming another host, Origin "null")
    is 403 and stores nothing; a same-site one passes;
  - a POST without the form's token, with a forged one, or with the token
    another client address was given is 403;
  - past --guestbook-rate a client gets 429 with Retry-After (seconds),
    while another address still posts;
  - HEAD, POST and the page a post redirects to do not count a visit; a GET
    of the page does;
  - bidi overrides and isolates, zero-width characters and C1 controls are
    not stored, and not shown even when another program stored them; user
    text is rendered inside <bdi>.
"""
import http.client as httpclient
import re
import shutil
import sys
import urllib.parse

import gbutil
from gbutil import FORM, Checker, Redis, Wharfd, form_token, http, page, post, shown_messages
from gbutil import shown_names, visitors

OTHER = "127.0.0.2"  # a second client address on the loopback network


def http_from(src, port, method, path, body=None, headers=None):
    c = httpclient.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(src, 0))
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def token_from(src, port):
    st, _, body = http_from(src, port, "GET", "/guestbook?posted=1")
    m = re.search(rb'name="token" value="([^"]*)"', body)
    return m.group(1).decode() if m else None


def form(name, message, token):
    return urllib.parse.urlencode({"name": name, "message": message, "token": token})


def stored(port):
    return shown_messages(page(port)[2])


def cross_site(check, port):
    base = "http://127.0.0.1:%d" % port
    cases = [
        ({"Origin": "http://evil.example"}, "Origin of another host"),
        ({"Origin": "http://127.0.0.1:%d" % (port + 1)}, "Origin with another port"),
        ({"Origin": "https://127.0.0.1"}, "Origin with another scheme's default port"),
        ({"Origin": "null"}, "Origin: null (sandboxed frame, data: URL)"),
        ({"Referer": "http://evil.example/guestbook"}, "Referer of another host, no Origin"),
        ({"Origin": "http://evil.example", "Referer": base + "/guestbook"},
         "Origin of another host wins over a same-site Referer"),
    ]
    for i, (hdrs, what) in enumerate(cases):
        st, _, b = post(port, "x", "cross-site %d" % i, headers=dict(FORM, **hdrs))
        check(st == 403 and b"another site" in b, "%s -> 403 (%s)" % (what, st))
    check(not any(m.startswith("cross-site") for m in stored(port)), "no cross-site post stored")
    for hdrs, what in [({"Origin": base}, "same-site Origin"),
                       ({"Origin": base.upper().replace("HTTP", "http")}, "Origin in capitals"),
                       ({"Referer": base + "/guestbook?x"}, "same-site Referer, no Origin"),
                       ({}, "neither Origin nor Referer (not a browser: the token decides)")]:
        st, _, _ = post(port, "x", "same-site " + what, headers=dict(FORM, **hdrs))
        check(st == 303, "%s -> 303 (%s)" % (what, st))


def tokens(check, port):
    st, _, b = post(port, "x", "no token", token=False)
    check(st == 403 and b"expired" in b, "POST without a token -> 403 with the reason (%s)" % st)
    for bad, what in [("0" * 32, "forged token"), ("abc", "short token"),
                      (form_token(port)[:-1] + "x", "token with one character changed"),
                      (form_token(port) * 2, "token repeated")]:
        st, _, _ = post(port, "x", "bad token", token=bad)
        check(st == 403, "%s -> 403 (%s)" % (what, st))
    # A token is for the address that fetched the form.
    mine = form_token(port)
    st, _, _ = http_from(OTHER, port, "POST", "/guestbook", form("x", "stolen token", mine), FORM)
    check(st == 403, "token used from another client address -> 403 (%s)" % st)
    theirs = token_from(OTHER, port)
    check(theirs and theirs != mine, "each address gets its own token")
    st, _, _ = http_from(OTHER, port, "POST", "/guestbook", form("x", "own token", theirs), FORM)
    check(st == 303, "the other address posts with its own token (%s)" % st)
    # Escaped like any form value, the token still counts.
    body = "name=x&message=escaped+token&%74oken=" + urllib.parse.quote(mine, safe="")
    st, _, _ = http(port, "POST", "/guestbook", body=body, headers=FORM)
    check(st == 303, "percent-encoded field name and value accepted (%s)" % st)
    msgs = stored(port)
    check("no token" not in msgs and "bad token" not in msgs and "stolen token" not in msgs,
          "refused posts are not stored")


def rate(check):
    with Wharfd(["--guestbook-rate", "3"], threads=2) as w:
        sts = [post(w.port, "r", "rate %d" % i)[0] for i in range(3)]
        check(sts == [303, 303, 303], "3 posts within --guestbook-rate 3 pass (%s)" % sts)
        st, hd, b = post(w.port, "r", "rate 3")
        ra = hd.get("retry-after", "")
        check(st == 429, "the 4th post in a minute -> 429 (%s)" % st)
        check(ra.isdigit() and 1 <= int(ra) <= 20,
              "429 has Retry-After in seconds, at most the refill time 20 s (%r)" % ra)
        check(b"Too many posts" in b, "the 429 page says why")
        st, _, _ = post(w.port, "r", "rate 4")
        check(st == 429, "and again (%s)" % st)
        # Refused before the limit is charged: bad forms do not use it up,
        # and they are still told what is wrong with them.
        st, _, _ = post(w.port, "r", "   ")
        check(st == 400, "an invalid form is still 400, not 429 (%s)" % st)
        tok = token_from(OTHER, w.port)
        st, _, _ = http_from(OTHER, w.port, "POST", "/guestbook", form("o", "other client", tok),
                             FORM)
        check(st == 303, "another client address is not limited by the first (%s)" % st)
        msgs = stored(w.port)
        check("rate 3" not in msgs and "rate 4" not in msgs, "posts answered 429 are not stored")
        check(msgs[:4] == ["other client", "rate 2", "rate 1", "rate 0"], "the others are (%r)"
              % msgs[:4])
        check("at most 3 posts a minute" in w.log_text(), "the limit is logged at startup")
    check(w.clean_exit(), "wharfd (rate) exits cleanly (%s)" % w.returncode)


def visits(check, port, redis=None):
    v0 = visitors(page(port)[2])
    v = visitors(page(port)[2])
    check(v == v0 + 1, "a GET of the page counts (%s -> %s)" % (v0, v))
    for _ in range(3):
        st, _, b = http(port, "HEAD", "/guestbook")
    check(st == 200 and b == b"", "HEAD /guestbook is 200 without a body")
    post(port, "v", "visit test")
    st, hd, _ = post(port, "v", "visit test 2")
    check(st == 303 and hd.get("location") == "/guestbook?posted=1",
          "a post redirects to /guestbook?posted=1 (%s)" % hd.get("location"))
    st, _, b = http(port, "GET", "/guestbook?posted=1")
    check(st == 200 and visitors(b.decode()) == v,
          "HEAD, POST and the page after a post count no visit (%s)" % visitors(b.decode()))
    if redis is not None:
        check(int(redis.cmd("GET", "guestbook:visitors")) == v,
              "guestbook:visitors in Redis unchanged too")
    v2 = visitors(page(port)[2])
    check(v2 == v + 1, "the next GET counts again (%s)" % v2)


# Code points that must not be stored or shown.
INVISIBLE = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068",
             "\u2069", "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\ufeff", "\u0080",
             "\u0085", "\u009f", "\u061c", "\u2060"]


def bidi(check, port, redis=None):
    name = "Ad\u202emin\u200b"
    msg = "pay\u202e" + "".join(INVISIBLE) + "txt.exe \u05e9\u05dc\u05d5\u05dd caf\u00e9"
    st, _, _ = post(port, name, msg)
    check(st == 303, "a post with bidi and invisible characters is accepted (%s)" % st)
    st, _, text = page(port)
    check(shown_messages(text)[0] == "paytxt.exe \u05e9\u05dc\u05d5\u05dd caf\u00e9",
          "message stored without them; Hebrew and accents kept (%r)" % shown_messages(text)[0])
    check(shown_names(text)[0] == "Admin", "name stored without them (%r)" % shown_names(text)[0])
    bad = [hex(ord(ch)) for ch in INVISIBLE if ch in text]
    check(not bad, "none of them anywhere on the page (%s)" % bad)
    check('<bdi class="name">Admin</bdi>' in text, "the name is inside <bdi>")
    check(re.search(r'<bdi class="msg">paytxt\.exe', text), "the message is inside <bdi>")
    st, _, b = post(port, "x", "\u202e\u200b\ufeff \u2066")
    check(st == 400 and b"message is empty" in b,
          "a message of invisible characters only is empty -> 400 (%s)" % st)
    if redis is not None:
        # Written by another program: never went through the form.
        redis.cmd("XADD", "guestbook:stream", "*", "t", "1700000000",
                  "name", "for\u202eeign", "msg", "a\u2067b\u0085c")
        st, _, text = page(port)
        check(shown_messages(text)[0] == "abc" and shown_names(text)[0] == "foreign",
              "an entry stored by another program is shown without them (%r %r)"
              % (shown_names(text)[0], shown_messages(text)[0]))


def main():
    check = Checker()
    with Wharfd([], threads=2) as w:
        print("wharfd (embedded store) on %d" % w.port)
        cross_site(check, w.port)
        tokens(check, w.port)
        visits(check, w.port)
        bidi(check, w.port)
    check(w.clean_exit(), "wharfd exits cleanly (%s)" % w.returncode)
    rate(check)
    if shutil.which("redis-server"):
        with Redis() as redis, Wharfd(["--redis", "127.0.0.1:%d" % redis.port], threads=2) as w:
            print("wharfd on Redis %d, on %d" % (redis.port, w.port))
            visits(check, w.port, redis)
            bidi(check, w.port, redis)
        check(w.clean_exit(), "wharfd (Redis) exits cleanly (%s)" % w.returncode)
    else:
        print("redis-server not installed: Redis checks skipped")
    return check.done()


if __name__ == "__main__":
    sys.exit(main())
