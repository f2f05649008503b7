"""A small HTTP file server on 127.0.0.1 for the weights tests: Range requests, a dropped transfer.

Serves the files of one folder by name. ``drop_once`` names files whose first transfer
is cut after half the bytes (the connection closes with the promised length unmet), as a
flaky network does. ``hostile`` maps a name to what a hostile mirror does instead of serving it:
``("redirect", location)``, ``("endless", None)`` (a body that never ends), ``("trickle", seconds)``
(one byte every so often), ``("gzip-bomb", decoded_bytes)`` (a small gzip body that decodes huge).
Every request is logged as (path, Range header).
"""

from __future__ import annotations

import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class WeightsServer:
    def __init__(self, folder: Path, *, drop_once: tuple[str, ...] = (), hostile: dict | None = None):
        self.folder = Path(folder)
        self.drop_once = set(drop_once)
        self.hostile = dict(hostile or {})
        self.stopping = threading.Event()
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_GET(self):
                name = self.path.lstrip("/")
                rng = self.headers.get("Range")
                server.requests.append((name, rng))
                if name in server.hostile:
                    self.hostile(*server.hostile[name])
                    return
                path = server.folder / name
                if "/" in name or not path.is_file():
                    self.send_error(404, "Not Found")
                    return
                data = path.read_bytes()
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-", rng or "")
                if match:
                    start = int(match.group(1))
                    if start >= len(data):
                        self.send_error(416, "Range Not Satisfiable")
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if name in server.drop_once:
                    server.drop_once.discard(name)
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

            def hostile(self, kind, arg):
                if kind == "redirect":
                    self.send_response(302)
                    self.send_header("Location", arg)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                if kind == "gzip-bomb":
                    import gzip

                    body = gzip.compress(b"\0" * arg, compresslevel=9)
                    self.send_header("Content-Encoding", "gzip")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.end_headers()  # no length: the body ends when the server says so
                try:
                    while not server.stopping.is_set():
                        if kind == "endless":
                            self.wfile.write(b"\0" * 65536)
                        else:  # trickle
                            self.wfile.write(b"\0")
                            self.wfile.flush()
                            server.stopping.wait(arg)
                except OSError:
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> WeightsServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.thread.join()
        self.httpd.server_close()

    def __exit__(self, *exc) -> None:
        self.stop()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
