"""A stand-in Ollama server for tests: loopback only, in a thread, misbehaving on request.

It lists one model at ``GET /api/tags`` and answers ``POST /api/chat`` with the next of
its ``replies``, cycled. A reply is the judge's text, or one of the faults:
``STALL`` (answer only after ``stall_seconds``, longer than the client waits),
``DROP`` (close the connection without a word), ``GARBAGE`` (HTTP 200 with a body that is
not JSON), ``NOT_HTTP`` (bytes that are no HTTP response) or ``ERROR`` (HTTP 500).
"""

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STALL, DROP, GARBAGE, NOT_HTTP, ERROR = "<stall>", "<drop>", "<garbage>", "<not http>", "<error>"
MODEL, DIGEST = "llama3:latest", "sha256:0123abcd"


class OllamaStub:
    """``with OllamaStub(["Score: 80"]) as stub: ... stub.url ...``; ``stub.chats`` counts /api/chat requests."""

    def __init__(self, replies, stall_seconds=2.0):
        self.replies, self.stall_seconds, self.chats = itertools.cycle(replies), stall_seconds, 0
        self._lock, self._stop = threading.Lock(), threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_GET(self):
                if self.path == "/api/tags":
                    self._send(200, {"models": [{"name": MODEL, "digest": DIGEST}]})
                else:
                    self._send(200, "Ollama is running")

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with stub._lock:
                    stub.chats += 1
                    reply = next(stub.replies)
                if reply == STALL:
                    stub._stop.wait(stub.stall_seconds)
                    reply = "Score: 50"  # too late: the client has given up
                if reply == DROP:
                    self.close_connection = True
                elif reply == GARBAGE:
                    self._send(200, "<html>\x00\x01 not json")
                elif reply == NOT_HTTP:
                    self.wfile.write(b"\x00\x17 garbage, no status line\r\n\r\n")
                elif reply == ERROR:
                    self._send(500, {"error": "model crashed"})
                else:
                    self._send(200, {"message": {"role": "assistant", "content": reply}, "done": True})

            def _send(self, status, body):
                data = (body if isinstance(body, str) else json.dumps(body)).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client hung up (after a stall)
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        """Close the server (again is fine): its port then refuses connections."""
        if self._stop.is_set():
            return
        self._stop.set()  # wake stalled handlers
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
