"""The listening sockets of --host: comma-separated addresses (IPv4, IPv6, names) on
--port, or UNIX socket paths ending in .sock. As llama-server: with several TCP
addresses, `::` binds IPv6 only (so 0.0.0.0,:: binds both families); SO_REUSEADDR
always, SO_REUSEPORT with --reuse-port; port 0 takes any free port."""

from __future__ import annotations

import os
import socket
import stat
from dataclasses import dataclass


@dataclass
class Listener:
    sock: socket.socket
    url: str          # as the log shows it: http://127.0.0.1:8080, http://[::1]:8080, unix:///run/x.sock
    path: str = ""    # a UNIX socket's file, removed at exit


def hosts_of(spec: str) -> list[str]:
    return [h.strip() for h in spec.split(",") if h.strip()] or ["127.0.0.1"]


def open_listeners(spec: str, port: int, *, reuse_port: bool = False, tls: bool = False,
                   backlog: int = 1024) -> list[Listener]:
    """Bind and listen on every address of `spec`; OSError (naming the address) on the first failure,
    after closing those already open."""
    hosts = hosts_of(spec)
    several_tcp = sum(not h.endswith(".sock") for h in hosts) > 1
    out: list[Listener] = []
    try:
        for host in hosts:
            if host.endswith(".sock"):
                out.append(_unix(host, backlog))
            else:
                out.append(_tcp(host, port, reuse_port=reuse_port, v6only=several_tcp, tls=tls, backlog=backlog))
    except OSError:
        close_all(out)
        raise
    return out


def _tcp(host: str, port: int, *, reuse_port: bool, v6only: bool, tls: bool, backlog: int) -> Listener:
    name = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise OSError(e.errno, f"cannot resolve {host}: {e.strerror}") from None
    last: OSError | None = None
    for family, kind, proto, _, addr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6 and v6only:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(addr)
            sock.listen(backlog)
        except OSError as e:
            sock.close()
            last = e
            continue
        bound = sock.getsockname()
        shown = f"[{bound[0]}]" if family == socket.AF_INET6 else bound[0]
        return Listener(sock, f"http{'s' if tls else ''}://{shown}:{bound[1]}")
    assert last is not None
    raise OSError(last.errno, f"cannot listen on {host}:{port}: {last.strerror or last}")


def _unix(path: str, backlog: int) -> Listener:
    if os.path.exists(path):
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            raise OSError(17, f"cannot listen on {path}: it exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # a stale socket left by a server that is gone
        else:
            raise OSError(98, f"cannot listen on {path}: another server is listening there")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(backlog)
    except OSError as e:
        sock.close()
        raise OSError(e.errno, f"cannot listen on {path}: {e.strerror or e}") from None
    return Listener(sock, f"unix://{path}", path)


def close_all(listeners: list[Listener]) -> None:
    for ls in listeners:
        try:
            ls.sock.close()
        except OSError:
            pass
        if ls.path:
            try:
                os.unlink(ls.path)
            except OSError:
                pass
