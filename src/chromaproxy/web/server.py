"""The micro-annotation page's server (stdlib ``http.server``): the page, its state, the heatmap strips of
RUN/micro/, and one write — a cluster's mark into RUN/micro.json.

Only files below RUN/micro/ are served: a path is decoded once, refused (403) if it is absolute or holds a
``..`` part, and refused again if, with symbolic links followed, it lands outside that folder; anything
else that is not a PNG there is 404. Bound to loopback, requests must also name a loopback host (a web
page elsewhere cannot reach the server through DNS rebinding), and a mark must come as JSON, which a
cross-site form cannot send without the browser asking first.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from chromaproxy.errors import UserError
from chromaproxy.segment.micro_file import CACHE, INDEX, MICRO, read_micro, set_mark, write_micro
from chromaproxy.web.page import PAGE

LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
MAX_BODY = 4096
HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
           "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline' 'self'; style-src 'unsafe-inline'"}


def inside(base: Path, raw: str) -> tuple[int, Path | None]:
    """(200, file) when the URL path ``raw`` names a PNG file below ``base``; else (403 or 404, None)."""
    name = unquote(raw)
    parts = PurePosixPath(name).parts
    if "\x00" in name or "\\" in name or name.startswith("/") or ".." in parts:
        return 403, None
    target = (base / name).resolve()
    if not target.is_relative_to(base):
        return 403, None  # a symbolic link out of the folder
    return (200, target) if target.is_file() and target.suffix == ".png" else (404, None)


def page_state(run: Path) -> dict:
    """What the page draws: per class, its clusters with their strip, size and saved mark."""
    micro = read_micro(run / MICRO)
    index = json.loads((run / CACHE / INDEX).read_text())["classes"]
    classes = []
    for key, entry in micro["classes"].items():
        strips = index.get(key, {}).get("strips", [])
        clusters = [{"index": m, "patterns": cluster["patterns"], "mark": cluster["mark"],
                     "strip": f"/files/{strips[m]}" if m < len(strips) else ""}
                    for m, cluster in enumerate(entry["clusters"])]
        classes.append({"id": key, "name": entry["name"], "clusters": clusters})
    return {"run": run.name, "data": micro.get("data"), "classes": classes}


class AnnotationServer(ThreadingHTTPServer):
    """Serves one run directory; ``lock`` makes each click's read-modify-write of micro.json whole."""

    daemon_threads = True

    def __init__(self, run: Path, host: str, port: int) -> None:
        self.run, self.lock = run.resolve(), threading.Lock()
        self.files = (self.run / CACHE).resolve()
        super().__init__((host, port), Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"


class Handler(BaseHTTPRequestHandler):
    server: AnnotationServer
    server_version = "chromaproxy-annotate"

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if not self._host_allowed():
            self._reply(403, {"error": "unexpected Host header"})
        elif path == "/":
            self._send(200, PAGE.encode(), "text/html; charset=utf-8")
        elif path == "/api/state":
            try:
                self._reply(200, page_state(self.server.run))
            except UserError as error:
                self._reply(500, {"error": str(error)})
        elif path.startswith("/files/"):
            self._file(path[len("/files/"):])
        else:
            self._reply(404, {"error": "no such page"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if not self._host_allowed() or not self.headers.get("Content-Type", "").startswith("application/json"):
            return self._reply(403, {"error": "marks are posted as JSON from the page itself"})
        if urlsplit(self.path).path != "/api/mark" or length > MAX_BODY:
            return self._reply(404, {"error": "no such action"})
        try:
            body = json.loads(self.rfile.read(length))
            with self.server.lock:
                micro = read_micro(self.server.run / MICRO)
                set_mark(micro, str(body["class"]), int(body["cluster"]), body["mark"])
                write_micro(self.server.run / MICRO, micro)
        except (ValueError, KeyError, IndexError, TypeError, UserError) as error:
            return self._reply(400, {"error": f"bad mark: {error}"})
        self._reply(200, {"class": str(body["class"]), "cluster": int(body["cluster"]), "mark": body["mark"]})

    def _file(self, raw: str) -> None:
        status, target = inside(self.server.files, raw)
        if target is None:
            return self._reply(status, {"error": "forbidden" if status == 403 else "not here"})
        self._send(200, target.read_bytes(), "image/png")

    def _host_allowed(self) -> bool:
        if self.server.server_address[0] not in LOOPBACK:
            return True  # the user chose to serve beyond this machine (--host)
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        return host in LOOPBACK

    def _reply(self, status: int, payload: dict) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        for key, value in {**HEADERS, "Content-Type": kind, "Content-Length": str(len(body))}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        """Quiet: the terminal shows the startup line, not a line per picture."""
