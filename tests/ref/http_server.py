#!/usr/bin/env python3
"""A local HTTP server for the download tests: serves DIR on 127.0.0.1 (an ephemeral port, written to PORTFILE),
supports HEAD and 'Range: bytes=N-' requests (206 Partial Content), logs each request line with its Range header to
DIR/../server.log, and with --drop-after N closes the connection after N bytes of the first full (non-range) response,
to simulate an interrupted download. --strict serves only DIR/<url path> (by default a missing path falls back to
DIR/<basename>), so a location can answer 404; --no-range ignores Range headers (answers 200 with the whole file).
Stops after --lifetime seconds (default 120) so no test can leave it running."""
import http.server, os, sys, threading, socketserver

root, portfile = sys.argv[1], sys.argv[2]
drop_after = int(sys.argv[sys.argv.index("--drop-after") + 1]) if "--drop-after" in sys.argv else None
strict = "--strict" in sys.argv
no_range = "--no-range" in sys.argv
lifetime = float(sys.argv[sys.argv.index("--lifetime") + 1]) if "--lifetime" in sys.argv else 120.0
log = open(os.path.join(root, "..", "server.log"), "a", buffering=1)
state = {"dropped": False}

class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.respond(head=True)

    def do_GET(self):
        self.respond(head=False)

    def respond(self, head):
        # the file at the URL's path under DIR if there is one (mirrored trees), else DIR/<basename>
        path = os.path.join(root, self.path.lstrip("/"))
        if not os.path.isfile(path) and not strict:
            path = os.path.join(root, os.path.basename(self.path))
        rng = None if no_range else self.headers.get("Range")
        log.write("%s %s %s\n" % ("HEAD" if head else "GET", self.path, rng or "-"))
        if not os.path.isfile(path):
            self.send_error(404)
            return
        data = open(path, "rb").read()
        start = 0
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % len(data))
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if head:
            return
        if drop_after is not None and not state["dropped"] and start == 0:
            state["dropped"] = True
            self.wfile.write(body[:drop_after])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

srv = Server(("127.0.0.1", 0), Handler)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(portfile + ".tmp", portfile)
threading.Timer(lifetime, srv.shutdown).start()
srv.serve_forever()
