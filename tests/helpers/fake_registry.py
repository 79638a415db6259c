"""A small stand-in for Docker Hub's registry over HTTP, enough for -dr: the token
service (GET /token?service=...&scope=repository:<repo>:pull, answering a token per
repository), manifests (GET /v2/<repo>/manifests/<tag>, 401 without that token) and
blobs (HEAD/GET /v2/<repo>/blobs/<digest>), which redirect to /cdn/<digest> on another
host name (localhost instead of 127.0.0.1), as Docker Hub redirects to its CDN: the CDN
refuses a request that carries an Authorization header, as a signed URL does.

`models`: {"repo:tag": GGUF bytes or path}; `layers` overrides a manifest's layers;
`swap` serves other bytes than the digest says for the named repo:tag."""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from pathlib import Path

from .http_thread import get_head_handler, serve, stop

GGUF_TYPE = "application/vnd.docker.ai.gguf.v3"


def _read(data: Path | bytes) -> bytes:
    return data.read_bytes() if isinstance(data, Path) else data


class FakeRegistry:
    def __init__(self, models: dict[str, Path | bytes], layers: dict[str, list] | None = None,
                 swap: dict[str, bytes] | None = None):
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[tuple[str, str], dict] = {}
        self.requests: list[tuple[str, str, str]] = []  # (method, path, Authorization)
        for ref, data in models.items():
            repo, tag = ref.split(":")
            body = _read(data)
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            self.blobs[digest] = (swap or {}).get(ref, body)
            layer_list = (layers or {}).get(ref) or [
                {"mediaType": "application/vnd.docker.ai.license", "digest": "sha256:" + "0" * 64, "size": 1},
                {"mediaType": GGUF_TYPE, "digest": digest, "size": len(body)}]
            self.manifests[(repo, tag)] = {"schemaVersion": 2, "layers": layer_list,
                                          "mediaType": "application/vnd.oci.image.manifest.v1+json"}
        self.server = serve(get_head_handler(lambda h, head: self._serve(h, head=head)))
        port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{port}"
        self.cdn = f"http://localhost:{port}"

    def env(self) -> dict[str, str]:
        return {"PYLLAMA_DOCKER_REGISTRY": self.url, "PYLLAMA_DOCKER_AUTH": self.url + "/token"}

    def close(self) -> None:
        stop(self.server)

    @staticmethod
    def token(repo: str) -> str:
        return "tok-" + hashlib.sha256(repo.encode()).hexdigest()[:16]

    def _send(self, h, code: int, body: bytes = b"", ctype: str = "application/json", head: bool = False,
              extra: dict | None = None) -> None:
        h.send_response(code)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            h.send_header(k, v)
        h.end_headers()
        if not head:
            h.wfile.write(body)

    def _serve(self, h, head: bool) -> None:
        auth = h.headers.get("Authorization", "")
        url = urllib.parse.urlsplit(h.path)
        self.requests.append((h.command, url.path, auth))
        parts = url.path.strip("/").split("/")
        if url.path == "/token":
            scope = urllib.parse.parse_qs(url.query).get("scope", [""])[0]
            repo = scope.removeprefix("repository:").removesuffix(":pull")
            return self._send(h, 200, json.dumps({"token": self.token(repo)}).encode(), head=head)
        if parts[0] == "cdn" and len(parts) == 2:
            if auth:  # a signed URL takes no second authorization
                return self._send(h, 400, b"<Error>Only one auth mechanism allowed</Error>", "application/xml", head)
            blob = self.blobs.get(parts[1])
            if blob is None:
                return self._send(h, 404, b"{}", head=head)
            return self._send(h, 200, blob, "application/octet-stream", head,
                              {"ETag": f'"{parts[1]}"', "Accept-Ranges": "none"})
        if parts[0] == "v2" and len(parts) >= 4 and parts[-2] in ("manifests", "blobs"):
            repo = "/".join(parts[1:-2])
            if auth != f"Bearer {self.token(repo)}":
                return self._send(h, 401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', head=head)
            if parts[-2] == "manifests":
                m = self.manifests.get((repo, parts[-1]))
                if m is None:
                    return self._send(h, 404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}', head=head)
                return self._send(h, 200, json.dumps(m).encode(), m["mediaType"], head)
            if parts[-1] not in self.blobs:
                return self._send(h, 404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}', head=head)
            return self._send(h, 307, b"", head=head, extra={"Location": f"{self.cdn}/cdn/{parts[-1]}"})
        return self._send(h, 404, b"{}", head=head)
