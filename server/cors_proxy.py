"""llama-server's MCP CORS proxy (--ui-mcp-proxy, or --agent): the web UI's MCP client
cannot call a remote MCP server from the browser (CORS), so it calls this server,
which forwards the request. EXPERIMENTAL in llama-server: anyone who may call it can
make the server fetch any URL, so it is off by default.

  GET|POST /cors-proxy?url=<http(s) URL>   the request, sent to the URL (its query kept);
                                           the answer relayed as it arrives
  DELETE /cors-proxy                       200 at once, nothing forwarded (an MCP client
                                           ending its session; some hosts refuse DELETE)

Only the client's headers named X-Llama-Server-Proxy-Header-<Name> are sent, as <Name>
(the web UI prefixes every header it means for the MCP server, Content-Type and
Authorization included); the POST body is sent as received. The answer's status,
headers (but hop-by-hop ones, its length, and its CORS headers: the server sets its
own) and body come back, the body piece by piece without buffering: a streamable-HTTP
MCP server answers with SSE streams. A client that goes away closes the connection to
the target. Redirects are followed (at most MAX_REDIRECTS), as llama-server's client does
(credentials stay behind when one leads to another host). https targets are checked
against the system's trusted certificates (SSL_CERT_FILE / SSL_CERT_DIR).

Errors, in llama-server's envelope: 403 feature_disabled when the proxy is off; 400 for
a URL or headers it will not send; 502 when the target cannot be reached or does not
answer. API keys apply as on any route."""

from __future__ import annotations

import functools
import http.client
import logging
import re
import ssl
from dataclasses import dataclass
from typing import Callable, Iterator
from urllib.parse import quote, urljoin, urlsplit

from flask import Blueprint, Flask, Response, current_app, request

from pyllama import __version__

from .disconnect import watcher
from .errors import ApiError, bad_request

log = logging.getLogger("pyllama.server")
bp = Blueprint("cors_proxy", __name__)

HEADER_PREFIX = "x-llama-server-proxy-header-"
MAX_URL = 8 << 10            # characters of the target URL
MAX_HEADERS = 64             # headers forwarded per request
MAX_HEADER_BYTES = 64 << 10  # their names and values together
# (the body is bounded by the app's request body limit, app_base.MAX_BODY_BYTES)
CONNECT_TIMEOUT_S = 30.0     # reaching the target (DNS, TCP, TLS)
IO_TIMEOUT_S = 600.0         # each read or write after that, as llama-server's 600 s
MAX_REDIRECTS = 5
CHUNK = 65536
RELAY_DEPTH = 8              # chunks read ahead of a slow client (then the target waits)
GONE_POLL_S = 0.5            # how often a silent stream checks that its client is still there
REDIRECTS = {301, 302, 303, 307, 308}

# hop-by-hop, or what the connection to the target decides itself; accept-encoding
# too, as llama-server: the target answers uncompressed
DROP_REQUEST = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
                "proxy-authenticate", "proxy-authorization", "host", "content-length", "accept-encoding"}
# hop-by-hop, the length (the body is re-chunked), and what the server sets itself
DROP_RESPONSE = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
                 "proxy-authenticate", "content-length", "server", "date"}
CREDENTIALS = {"authorization", "cookie"}  # not sent on to another host a redirect names
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # a header name (RFC 9110)
BAD_VALUE = re.compile(r"[\r\n\0]")
FOLD = re.compile(r"[\r\n]+[ \t]*")


def install(app: Flask, config) -> None:
    """/cors-proxy on `app`: the proxy when --ui-mcp-proxy or --agent is given, else
    403 on every method."""
    on = bool(config.ui_mcp_proxy or getattr(config, "agent", False))
    app.config["PYLLAMA_CORS_PROXY"] = on
    app.register_blueprint(bp)
    if on:
        log.warning("-----------------")
        log.warning("CORS proxy is enabled (/cors-proxy): do not expose the server to untrusted environments")
        log.warning("This feature is EXPERIMENTAL and may be removed or changed in future versions")
        log.warning("-----------------")


@dataclass(frozen=True)
class Target:
    url: str     # as given (redirects are resolved against it)
    scheme: str  # http | https
    host: str    # ASCII (IDNA), IPv6 without brackets
    port: int
    path: str    # path and query, percent-encoded as a request line needs

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port


def parse_target(url: str) -> Target:
    """The URL to forward to, or bad_request saying why not (llama-server's messages)."""
    if len(url) > MAX_URL:
        raise bad_request(f"target URL too long ({len(url)} characters, at most {MAX_URL})")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise bad_request(f"invalid target URL: {e}") from None
    if not parts.hostname:
        raise bad_request("invalid target URL: missing host")
    if parts.username is not None or parts.password is not None:
        raise bad_request("authentication in target URL is not supported")
    if parts.scheme not in ("http", "https"):
        raise bad_request(f"unsupported URL scheme in target URL: {parts.scheme}")
    try:
        host = parts.hostname if parts.hostname.isascii() else parts.hostname.encode("idna").decode("ascii")
    except UnicodeError:
        raise bad_request(f"invalid target URL: bad host name {parts.hostname!r}") from None
    path = _requote(parts.path or "/") + ("?" + _requote(parts.query) if parts.query else "")
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    return Target(url, parts.scheme, host, port, path)


def _requote(s: str) -> str:
    """`s` with what a request line cannot carry (spaces, controls, non-ASCII)
    percent-encoded; what is already encoded, and every delimiter, stays."""
    return quote(s, safe="!#$%&'()*+,/:;=?@[]~")


def forwarded_headers() -> dict[str, str]:
    """The request's X-Llama-Server-Proxy-Header-* headers, unprefixed: what is sent."""
    out: dict[str, str] = {}
    size = 0
    for name, value in request.headers.items():
        if not name.lower().startswith(HEADER_PREFIX):
            continue
        name = name[len(HEADER_PREFIX):]
        if not name:
            continue
        if not TOKEN.fullmatch(name) or BAD_VALUE.search(value):
            raise bad_request(f"invalid proxy header: {name[:64]!r}")
        out[name] = value
        size += len(name) + len(value)
        if len(out) > MAX_HEADERS:
            raise bad_request(f"too many proxy headers (at most {MAX_HEADERS})")
        if size > MAX_HEADER_BYTES:
            raise bad_request(f"proxy headers too large (at most {MAX_HEADER_BYTES >> 10} KiB in all)")
    named = {t.strip().lower() for k, v in out.items() if k.lower() == "connection" for t in v.split(",")}
    return {k: v for k, v in out.items() if k.lower() not in DROP_REQUEST and k.lower() not in named}


def _check_enabled() -> None:
    if not current_app.config.get("PYLLAMA_CORS_PROXY"):
        raise ApiError(403, "this feature is disabled", "feature_disabled")


@bp.route("/cors-proxy", methods=["GET", "POST"])
def proxy():
    _check_enabled()
    target = parse_target(request.args.get("url", ""))
    headers = forwarded_headers()
    headers.setdefault("User-Agent", f"pyllama/{__version__}")
    method = "POST" if request.method == "POST" else "GET"  # HEAD: as GET (the server sends no body)
    body = request.get_data(cache=False) if method == "POST" else None  # 413 past the app's body limit
    conn, resp = _send(target, method, headers, body)
    try:
        # a header folded over lines (obsolete, but http.client keeps it so) is one line here
        out = [(k, FOLD.sub(" ", v)) for k, v in resp.getheaders()
               if k.lower() not in DROP_RESPONSE and not k.lower().startswith("access-control-")]
        r = Response(_relay(conn, resp, watcher(request.environ)), status=resp.status, headers=out)
    except ValueError as e:  # a header no response may carry
        conn.close()
        raise ApiError(502, f"proxy error: the target's answer cannot be relayed ({e})", "server_error") from None
    r.call_on_close(conn.close)  # also when the relay never started (the client left first)
    if resp.getheader("Content-Type") is None:
        del r.headers["Content-Type"]  # not Flask's default text/html
    return r


@bp.delete("/cors-proxy")
def end_session():
    _check_enabled()
    r = Response(status=200)
    del r.headers["Content-Type"]
    r.headers.update({"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "*",
                      "Access-Control-Allow-Methods": "GET,POST,DELETE,OPTIONS",
                      "Access-Control-Expose-Headers": "*"})
    return r


def _send(target: Target, method: str, headers: dict[str, str],
          body: bytes | None) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """The target's answer (its status and headers read), redirects followed."""
    hops = 0
    while True:
        log.info("cors proxy: %s %s://%s:%d%s", method, target.scheme, target.host, target.port,
                 target.path.split("?", 1)[0])
        conn, resp = _open(target, method, headers, body)
        location = resp.getheader("Location")
        if resp.status not in REDIRECTS or not location or hops == MAX_REDIRECTS:
            return conn, resp
        hops += 1
        conn.close()
        try:
            nxt = parse_target(urljoin(target.url, location))
        except ApiError as e:
            raise ApiError(502, f"the target URL redirected to a URL that cannot be followed: {e.message}") from None
        if resp.status == 303 and method != "GET":
            method, body = "GET", None
            headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        if nxt.origin != target.origin:
            headers = {k: v for k, v in headers.items() if k.lower() not in CREDENTIALS}
        target = nxt


def _open(target: Target, method: str, headers: dict[str, str],
          body: bytes | None) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    if target.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            target.host, target.port, timeout=CONNECT_TIMEOUT_S, context=_tls())
    else:
        conn = http.client.HTTPConnection(target.host, target.port, timeout=CONNECT_TIMEOUT_S)
    try:
        conn.connect()
        conn.sock.settimeout(IO_TIMEOUT_S)
        conn.request(method, target.path, body=body, headers=headers)
        return conn, conn.getresponse()
    except (OSError, http.client.HTTPException) as e:
        conn.close()
        # 502 Bad Gateway: the failure is the target's (unreachable, refused, timed out, not
        # HTTP, a bad certificate), not this request's; llama-server answers 500 in text
        raise ApiError(502, f"proxy error: cannot reach {target.scheme}://{_netloc(target)}: "
                            f"{str(e) or type(e).__name__}", "server_error") from None
    except BaseException:
        conn.close()
        raise


@functools.lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    """The system's trusted certificates, names checked; loaded once (it takes a while)."""
    return ssl.create_default_context()


def _netloc(target: Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    return f"{host}:{target.port}"


def _relay(conn: http.client.HTTPConnection, resp: http.client.HTTPResponse,
           gone: Callable[[], bool]) -> Iterator[bytes]:
    """The target's body as it arrives. A reader greenlet feeds a short queue (a slow
    client holds the target back, nothing piles up here); meanwhile the client is
    checked every GONE_POLL_S, so a silent stream whose client left ends too."""
    import gevent
    from gevent.queue import Empty, Queue

    q: Queue = Queue(maxsize=RELAY_DEPTH)

    def read() -> None:
        try:
            while True:
                piece = resp.read1(CHUNK)  # what has arrived, without waiting for more
                if not piece:
                    break
                q.put(piece)
        except (OSError, http.client.HTTPException, ValueError) as e:
            log.info("cors proxy: the target broke off its answer: %s", str(e) or type(e).__name__)
        q.put(None)

    reader = gevent.spawn(read)
    try:
        while True:
            try:
                piece = q.get(timeout=GONE_POLL_S)
            except Empty:
                if gone():
                    return
                continue
            if piece is None:
                return
            yield piece
    finally:  # also when the client went away (the WSGI server closes the generator)
        reader.kill()
        conn.close()
