"""A local HTTP server on 127.0.0.1 for download tests: serves bytes from memory, honours
Range requests (or not), and can drop the connection halfway through a transfer, with or
without having announced the length (without, a cut transfer looks complete)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Served:
    files: dict[str, bytes]
    ranges: bool = True  # honour Range requests with 206
    drop_after: int | None = None  # close the connection after this many body bytes ...
    drops: int = 0  # ... for this many requests
    length: bool = True  # send Content-Length
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)


def _handler(served: Served) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            range_header = self.headers.get("Range")
            served.requests.append((self.path, range_header))
            body = served.files.get(self.path.lstrip("/"))
            if body is None:
                self.send_error(404)
                return
            start = 0
            if range_header and served.ranges:
                start = int(range_header.removeprefix("bytes=").split("-")[0])
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            part = body[start:]
            if served.length:
                self.send_header("Content-Length", str(len(part)))
            self.end_headers()
            if served.drops > 0 and served.drop_after is not None:
                served.drops -= 1
                self.wfile.write(part[: served.drop_after])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(part)

    return Handler


@contextmanager
def serve(served: Served) -> Iterator[str]:
    """Run the server in a thread; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(served))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
