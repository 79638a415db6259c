"""The web UI's MCP CORS proxy (--ui-mcp-proxy, --agent) at /cors-proxy, end to end:
a real model server (SmolLM2, with an API key, trusting one test certificate) forwarding
to real upstream HTTP(S) servers in this process that echo what they receive and stream
SSE when the test lets them; then two routers: one with --agent under --api-prefix, one
without the proxy (403)."""

from __future__ import annotations

import http.client
import json
import select
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from helpers.http_thread import serve, stop
from helpers.server_process import ServerProcess, free_port, self_signed_cert

KEY = "k-local"
PREFIX = "X-Llama-Server-Proxy-Header-"
ENVELOPE_400 = "invalid_request_error"


class Upstream(BaseHTTPRequestHandler):
    """/echo...: the request as JSON; /status/N: status N with headers of its own;
    /sse?gate=NAME: one event, then (when the test sets the gate) a second one and the
    end; &silent=1: one event, then wait for the proxy to hang up (recorded in `closed`);
    /redirect?code=N&to=URL: a redirect."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self._route()

    def do_POST(self):
        self._route()

    def do_DELETE(self):
        self._route()

    def _route(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append((self.command, self.path))
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path.startswith("/status/"):
            code = int(url.path.rsplit("/", 1)[1])
            data = b"" if code == 204 else f"status {code}".encode()
            self.send_response(code)
            if code != 204:
                self.send_header("Content-Type", "application/problem+json")
            self.send_header("Mcp-Session-Id", "session-1")
            self.send_header("Access-Control-Allow-Origin", "https://upstream.example")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif url.path == "/sse":
            self._sse(q)
        elif url.path == "/folded":  # an obsolete header folded over two lines
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Folded: first\r\n second\r\nContent-Length: 2\r\n\r\nok")
        elif url.path == "/redirect":
            self.send_response(int(q["code"]))
            self.send_header("Location", q["to"])
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            data = json.dumps({"method": self.command, "path": url.path, "query": url.query,
                               "headers": [[k.lower(), v] for k, v in self.headers.items()],
                               "body": body.decode("latin-1")}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def _sse(self, q: dict):
        chunked = q.get("chunked") == "1"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:  # the body ends when the connection does
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()

        def write(data: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)

        write(b'data: {"n": 1}\n\n')
        if q.get("silent"):
            for _ in range(200):  # 20 s at most
                if select.select([self.connection], [], [], 0.1)[0] and not self.connection.recv(1):
                    self.server.closed[q["gate"]].set()
                    return
            return
        self.server.gates[q["gate"]].wait(20)
        write(b'data: {"n": 2}\n\n')
        if chunked:
            self.wfile.write(b"0\r\n\r\n")


@pytest.fixture(scope="module")
def upstream():
    httpd = serve(Upstream)
    httpd.seen, httpd.gates, httpd.closed = [], {}, {}
    httpd.base = f"http://127.0.0.1:{httpd.server_port}"
    yield httpd
    stop(httpd)


@pytest.fixture(scope="module")
def trusted(tmp_path_factory) -> tuple[str, str]:
    """A certificate for 127.0.0.1 that the server trusts (SSL_CERT_FILE), and its key."""
    return self_signed_cert(tmp_path_factory.mktemp("trusted"))


@pytest.fixture(scope="module")
def srv(smollm2_path, trusted):
    s = ServerProcess(smollm2_path, "-c", "256", "-np", "1", "-t", "1", "--ui-mcp-proxy", "--api-key", KEY,
                      env={"SSL_CERT_FILE": trusted[1]})
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client():
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {KEY}"
        yield session


def via(srv, target: str) -> str:
    return f"{srv.url}/cors-proxy?" + urlencode({"url": target})


def error_of(r: requests.Response, status: int, type_: str = ENVELOPE_400) -> str:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == status and err["type"] == type_, err
    return err["message"]


def read_event(chunks, buf: bytearray) -> bytes:
    """The next SSE event (without its blank line) from an iterator of byte chunks."""
    while b"\n\n" not in buf:
        buf += next(chunks)
    i = buf.index(b"\n\n")
    event = bytes(buf[:i])
    del buf[:i + 2]
    return event


# -- forwarding -----------------------------------------------------------------------------------

def test_get_forwards_prefixed_headers_only_and_keeps_the_query(srv, upstream, client):
    r = client.get(via(srv, upstream.base + "/echo/a%20b?x=1&y=two%20words&x=3"), timeout=30, headers={
        PREFIX + "Authorization": "Bearer upstream-token",
        "x-llama-server-proxy-header-mcp-session-id": "s-42",
        PREFIX + "Accept": "application/json, text/event-stream",
        PREFIX: "an empty name: skipped",
        PREFIX + "Host": "elsewhere.example",      # the connection's own
        PREFIX + "Connection": "X-Hop",            # hop-by-hop, and what it names
        PREFIX + "X-Hop": "dropped",
        "X-Not-Forwarded": "1", "Cookie": "local=secret", "Origin": "http://localhost:5173",
    })
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    echo = r.json()
    assert echo["method"] == "GET" and echo["path"] == "/echo/a%20b" and echo["query"] == "x=1&y=two%20words&x=3"
    headers = dict(echo["headers"])
    # nothing of the client's but the prefixed headers: not its key, cookie, origin, user agent or encodings
    assert set(headers) == {"host", "accept-encoding", "user-agent", "authorization", "mcp-session-id", "accept"}
    assert headers["authorization"] == "Bearer upstream-token" and headers["mcp-session-id"] == "s-42"
    assert headers["accept"] == "application/json, text/event-stream"
    assert headers["host"] == f"127.0.0.1:{upstream.server_port}"
    assert headers["accept-encoding"] == "identity" and headers["user-agent"].startswith("pyllama/")
    assert echo["body"] == ""
    # our CORS answer, not the target's
    assert r.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"


def test_post_forwards_the_body_as_is(srv, upstream, client):
    body = b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"x":"\xc3\xa9"}}'
    r = client.post(via(srv, upstream.base + "/mcp"), data=body, timeout=30, headers={
        "Content-Type": "text/plain", PREFIX + "Content-Type": "application/json"})
    echo = r.json()
    assert echo["method"] == "POST" and echo["path"] == "/mcp" and echo["query"] == ""
    assert echo["body"].encode("latin-1") == body
    headers = dict(echo["headers"])
    assert headers["content-type"] == "application/json" and headers["content-length"] == str(len(body))
    assert set(headers) == {"host", "accept-encoding", "user-agent", "content-type", "content-length"}


@pytest.mark.parametrize("code", [202, 204, 404, 500])
def test_status_and_headers_pass_through(srv, upstream, client, code):
    r = client.post(via(srv, f"{upstream.base}/status/{code}"), data=b"{}", timeout=30)
    assert r.status_code == code
    assert r.headers["Mcp-Session-Id"] == "session-1"
    assert r.headers.get("Access-Control-Allow-Origin") != "https://upstream.example"
    if code == 204:
        assert r.content == b"" and "Content-Type" not in r.headers
    else:
        assert r.headers["Content-Type"] == "application/problem+json" and r.text == f"status {code}"


def test_a_folded_header_is_relayed_as_one_line(srv, upstream, client):
    r = client.get(via(srv, f"{upstream.base}/folded"), timeout=30)
    assert r.status_code == 200 and r.text == "ok"
    assert r.headers["X-Folded"] == "first second"


@pytest.mark.parametrize("chunked", ["1", "0"])
def test_sse_arrives_as_the_target_writes_it(srv, upstream, client, chunked):
    gate = upstream.gates.setdefault(f"s{chunked}", threading.Event())
    url = via(srv, f"{upstream.base}/sse?gate=s{chunked}&chunked={chunked}")
    with client.get(url, stream=True, timeout=15) as r:
        assert r.status_code == 200 and r.headers["Content-Type"] == "text/event-stream"
        chunks, buf = r.iter_content(chunk_size=None), bytearray()
        # the target has not finished (it waits for the gate): the first event came through alone
        assert read_event(chunks, buf) == b'data: {"n": 1}'
        assert not gate.is_set()
        assert srv.get("/health").status_code == 200  # the open stream holds nothing else up
        gate.set()
        assert read_event(chunks, buf) == b'data: {"n": 2}'
        assert next(chunks, None) is None and not buf


def test_a_client_leaving_closes_the_connection_to_the_target(srv, upstream):
    closed = upstream.closed.setdefault("gone", threading.Event())
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=15)
    conn.request("GET", "/cors-proxy?" + urlencode({"url": f"{upstream.base}/sse?gate=gone&silent=1"}),
                 headers={"Authorization": f"Bearer {KEY}"})
    resp = conn.getresponse()
    assert resp.status == 200 and b'data: {"n": 1}' in resp.read1(4096)
    resp.close()
    conn.close()
    # the target writes nothing more: the server notices its client left and hangs up
    assert closed.wait(10)
    assert srv.get("/health").status_code == 200


def test_redirects_are_followed(srv, upstream, client):
    to = "/echo/after?x=1"
    r = client.get(via(srv, f"{upstream.base}/redirect?" + urlencode({"code": 302, "to": to})), timeout=30)
    assert r.status_code == 200 and r.json()["path"] == "/echo/after" and r.json()["query"] == "x=1"
    r = client.post(via(srv, f"{upstream.base}/redirect?" + urlencode({"code": 307, "to": to})), data=b"keep",
                    timeout=30)
    assert r.json()["method"] == "POST" and r.json()["body"] == "keep"
    # to another host: the credentials stay behind
    other = f"http://localhost:{upstream.server_port}/echo/other"
    r = client.get(via(srv, f"{upstream.base}/redirect?" + urlencode({"code": 301, "to": other})), timeout=30,
                   headers={PREFIX + "Authorization": "Bearer t", PREFIX + "Mcp-Session-Id": "s"})
    headers = dict(r.json()["headers"])
    assert r.json()["path"] == "/echo/other" and "authorization" not in headers and headers["mcp-session-id"] == "s"


def test_delete_ends_a_session_without_forwarding(srv, upstream, client):
    before = len(upstream.seen)
    r = client.delete(via(srv, upstream.base + "/mcp"), timeout=30)
    assert r.status_code == 200 and r.content == b""
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert r.headers["Access-Control-Allow-Headers"] == "*"
    assert r.headers["Access-Control-Allow-Methods"] == "GET,POST,DELETE,OPTIONS"
    assert r.headers["Access-Control-Expose-Headers"] == "*"
    assert len(upstream.seen) == before


# -- refusals ---------------------------------------------------------------------------------------

def test_bad_target_urls(srv, upstream, client):
    def message(url: str | None) -> str:
        target = f"{srv.url}/cors-proxy" + ("" if url is None else "?" + urlencode({"url": url}))
        return error_of(client.get(target, timeout=30), 400)
    assert message(None) == "invalid target URL: missing host"
    assert message("http://") == "invalid target URL: missing host"
    assert message("ftp://127.0.0.1/file") == "unsupported URL scheme in target URL: ftp"
    assert message(f"http://user:pass@127.0.0.1:{upstream.server_port}/echo") == \
        "authentication in target URL is not supported"
    assert message("http://127.0.0.1:99999/") == "invalid target URL: Port out of range 0-65535"
    assert error_of(client.post(via(srv, "file://localhost/etc/passwd"), timeout=30), 400) == \
        "unsupported URL scheme in target URL: file"


def test_bounds(srv, upstream, client):
    headers = {f"{PREFIX}X-H{i}": "v" for i in range(65)}
    assert error_of(client.get(via(srv, upstream.base + "/echo"), headers=headers, timeout=30), 400) == \
        "too many proxy headers (at most 64)"
    r = client.post(via(srv, upstream.base + "/echo"), data=b"x" * (17 << 20), timeout=60)
    assert "at most 16 MB" in error_of(r, 400)
    assert client.get(via(srv, upstream.base + "/echo"), timeout=30).status_code == 200


def test_unreachable_target(srv, client):
    port = free_port()  # nothing listens there
    msg = error_of(client.get(via(srv, f"http://127.0.0.1:{port}/mcp"), timeout=30), 502, "server_error")
    assert msg.startswith(f"proxy error: cannot reach http://127.0.0.1:{port}: ")
    assert srv.get("/health").status_code == 200


def tls_upstream(key: str, cert: str) -> ThreadingHTTPServer:
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    httpd = serve(Upstream, tls=ctx)
    httpd.seen = []
    return httpd


def test_https_targets(srv, client, trusted, tmp_path):
    good, bad = tls_upstream(*trusted), tls_upstream(*self_signed_cert(tmp_path))
    try:
        r = client.post(via(srv, f"https://127.0.0.1:{good.server_port}/echo?tls=1"), data=b"secret", timeout=30)
        assert r.status_code == 200 and r.json()["query"] == "tls=1" and r.json()["body"] == "secret"
        msg = error_of(client.get(via(srv, f"https://127.0.0.1:{bad.server_port}/echo"), timeout=30), 502,
                       "server_error")
        assert msg.startswith(f"proxy error: cannot reach https://127.0.0.1:{bad.server_port}: ")
        assert "CERTIFICATE_VERIFY_FAILED" in msg
    finally:
        for httpd in (good, bad):
            stop(httpd)


def test_api_key_applies(srv, upstream):
    assert requests.get(via(srv, upstream.base + "/echo"), timeout=30).status_code == 401


def test_parse_target():
    from pyllama.server.cors_proxy import parse_target
    from pyllama.server.errors import ApiError

    t = parse_target("https://b\u00fccher.example/a b?q=x y&z=%20")
    assert (t.scheme, t.host, t.port, t.path) == ("https", "xn--bcher-kva.example", 443, "/a%20b?q=x%20y&z=%20")
    t = parse_target("http://[::1]:8080")
    assert (t.host, t.port, t.path) == ("::1", 8080, "/")
    with pytest.raises(ApiError, match="target URL too long"):
        parse_target("http://h/" + "a" * (8 << 10))
    with pytest.raises(ApiError, match="authentication"):
        parse_target("http://user@h/")


# -- other servers ------------------------------------------------------------------------------------

def test_router_with_agent_under_a_prefix(tmp_path, upstream):
    s = ServerProcess(None, "--models-dir", str(tmp_path), "--agent", "--api-prefix", "/api", prefix="/api")
    try:
        r = requests.post(via(s, upstream.base + "/echo?from=router"), data=b"hi", timeout=30)
        assert r.json()["method"] == "POST" and r.json()["query"] == "from=router" and r.json()["body"] == "hi"
        assert requests.delete(via(s, upstream.base), timeout=30).status_code == 200
    finally:
        s.stop()
    out = s.proc.stdout.read().decode(errors="replace")
    assert "CORS proxy is enabled" in out and "EXPERIMENTAL" in out


def test_disabled(tmp_path, upstream):
    s = ServerProcess(None, "--models-dir", str(tmp_path))
    try:
        url = via(s, upstream.base + "/echo")
        for r in (requests.get(url, timeout=30), requests.post(url, data=b"{}", timeout=30),
                  requests.delete(url, timeout=30)):
            assert r.status_code == 403
            assert r.json() == {"error": {"code": 403, "message": "this feature is disabled",
                                          "type": "feature_disabled"}}
    finally:
        s.stop()
    assert "CORS proxy is enabled" not in s.proc.stdout.read().decode(errors="replace")
