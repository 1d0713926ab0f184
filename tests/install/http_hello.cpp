// Installed-library consumer in C++17: an HTTP server (wh_router behind
// wh_http_server) listening on a bare loop, 127.0.0.1 port 0, and a
// blocking client on a std::thread that sends one request. Exits 0 when
// GET /hello was answered 200 with the body "hello" (sent as two parts by
// reference, wh_http_respond_parts, whose release ran exactly once), and
// after a file representation's prepared fields (wh_static_fields_make)
// were made from C++ and a plan's borrowed body (body_release) was released
// exactly once by wh_static_plan_release.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>

#include <wharf/http.h>
#include <wharf/http_file.h>
#include <wharf/loop.h>
#include <wharf/net.h>

namespace
{

struct State {
    wh_loop *loop = nullptr;
    std::atomic<bool> client_done{false};
    bool timed_out = false;
    int handled = 0;
    int released = 0;
    std::string response;
};

void hello(wh_http_req *r, void *ud)
{
    auto *st = static_cast<State *>(ud);
    wh_str m = wh_http_req_method(r);
    st->handled++;
    if (std::string_view(m.p, m.len) != "GET") {
        wh_http_respond_error(r, 405);
        return;
    }
    static constexpr std::string_view body = "hello";
    const wh_http_body_part parts[2] = {{body.data(), 3}, {body.data() + 3, 2}};
    wh_http_respond_parts(
        r, 200, "text/plain", parts, 2, [](void *p) { static_cast<State *>(p)->released++; }, st);
}

// Runs off the loop thread: plain sockets, so a broken server shows up as
// a wrong or missing answer rather than as a bug in a second wharf client.
std::string fetch(unsigned short port, std::string_view request)
{
    std::string out;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return out;
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) == 0 &&
        send(fd, request.data(), request.size(), MSG_NOSIGNAL) == ssize_t(request.size())) {
        char buf[4096];
        for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;)
            out.append(buf, size_t(n));
    }
    close(fd);
    return out;
}

void poll_done(wh_timer *t, void *ud)
{
    auto *st = static_cast<State *>(ud);
    // Stop once the client has its answer and the server side has closed
    // too, so that nothing is left on the loop when it is freed.
    if (st->client_done.load() && wh_net_conn_count(st->loop) == 0) wh_loop_stop(wh_timer_loop(t));
}

void deadline(wh_timer *t, void *ud)
{
    static_cast<State *>(ud)->timed_out = true;
    wh_loop_stop(wh_timer_loop(t));
}

int fail(const char *what, int rc)
{
    std::fprintf(stderr, "http_hello: %s: %s\n", what, wh_strerror(rc));
    return 1;
}

} // namespace

int main()
{
    State st;
    int rc;
    {
        // A cache's prepared block, as wharfd's fd cache makes it.
        wh_static_root root;
        if ((rc = wh_static_root_open(&root, ".", nullptr)) != 0)
            return fail("wh_static_root_open", rc);
        wh_static_rep rep{};
        rep.etag = "\"1-2-3\"";
        rep.size = 5;
        static wh_static_fields f;
        rc = wh_static_fields_make(&root, &rep, &f);
        wh_static_root_close(&root);
        if (rc != 0) return fail("wh_static_fields_make", rc);
        if (std::string_view(f.text, f.len).find("ETag: \"1-2-3\"\r\n") == std::string_view::npos)
            return fail("wh_static_fields_make", -EINVAL);
    }
    {
        // A plan borrowing its body (as wharfd lends cached content): the
        // release runs once, however often the plan is released.
        static int plan_released = 0;
        static char hi[] = "hi";
        wh_static_plan plan;
        wh_static_plan_init(&plan);
        plan.status = 200;
        plan.body = hi;
        plan.body_len = 2;
        plan.body_release = [](void *p) { ++*static_cast<int *>(p); };
        plan.body_ud = &plan_released;
        wh_static_plan_release(&plan);
        wh_static_plan_release(&plan);
        if (plan_released != 1) return fail("wh_static_plan_release", -EINVAL);
    }
    if ((rc = wh_loop_new(&st.loop, nullptr)) != 0) return fail("wh_loop_new", rc);

    wh_router *rt;
    if ((rc = wh_router_new(&rt)) != 0) return fail("wh_router_new", rc);
    if ((rc = wh_router_add(rt, "GET", "/hello", hello, &st)) != 0)
        return fail("wh_router_add", rc);

    wh_http_server *hs;
    if ((rc = wh_http_server_new(&hs, nullptr, wh_router_handle, rt)) != 0)
        return fail("wh_http_server_new", rc);
    wh_listener *l;
    if ((rc = wh_http_server_listen(hs, st.loop, "127.0.0.1:0", nullptr, &l)) != 0)
        return fail("wh_http_server_listen", rc);
    wh_sockaddr addr;
    char text[128];
    if ((rc = wh_listener_local(l, &addr)) != 0) return fail("wh_listener_local", rc);
    if ((rc = wh_addr_format(&addr, text, sizeof text)) < 0) return fail("wh_addr_format", rc);
    std::string_view where(text);
    auto port =
        static_cast<unsigned short>(std::stoi(std::string(where.substr(where.rfind(':') + 1))));

    wh_timer *poll, *limit;
    if ((rc = wh_timer_new(st.loop, poll_done, &st, &poll)) != 0 ||
        (rc = wh_timer_start(poll, 5, 5)) != 0 ||
        (rc = wh_timer_new(st.loop, deadline, &st, &limit)) != 0 ||
        (rc = wh_timer_start(limit, 10000, 0)) != 0)
        return fail("timers", rc);

    std::thread client([&st, port] {
        st.response = fetch(port, "GET /hello HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        st.client_done = true;
    });
    rc = wh_loop_run(st.loop, WH_RUN_DEFAULT);
    client.join();

    wh_timer_free(poll);
    wh_timer_free(limit);
    wh_listener_close(l);
    wh_loop_free(st.loop);
    wh_http_server_free(hs); // after its host, the loop, is gone
    wh_router_free(rt);

    const std::string_view resp = st.response;
    const auto head_end = resp.find("\r\n\r\n");
    const bool ok = rc == 0 && !st.timed_out && st.handled == 1 && st.released == 1 &&
                    resp.substr(0, 13) == "HTTP/1.1 200 " && head_end != std::string_view::npos &&
                    resp.substr(head_end + 4) == "hello";
    if (!ok) {
        std::fprintf(stderr, "http_hello: run=%d timed_out=%d handled=%d response:\n%s\n", rc,
                     int(st.timed_out), st.handled, st.response.c_str());
        return 1;
    }
    std::printf("http_hello: GET http://%s/hello -> 200 \"hello\"\n", text);
    return 0;
}
