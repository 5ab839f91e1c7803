"""A local HTTP server on 127.0.0.1 for the download tests (hermetic: nothing leaves the machine)."""
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FilesHandler(BaseHTTPRequestHandler):
    """Serves `server.files` ({path: bytes}), 404 for any other path; counts requests in `server.hits`."""

    def do_GET(self):
        self.server.hits += 1
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextmanager
def local_server(handler=FilesHandler, **attrs):
    """A threading server with `handler`, the given attributes set on it, and `url(path)`; shut down after."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    srv.files, srv.hits = {}, 0
    for name, value in attrs.items():
        setattr(srv, name, value)
    srv.url = lambda path: f"http://127.0.0.1:{srv.server_address[1]}{path}"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)
