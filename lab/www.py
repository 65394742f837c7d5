"""The lab's "internet" web server (run by lab/lab.sh peers-up in namespace opdbus-www).

GET / answers 200 with the body ``source=<client ip>\\n``: who the server saw as the client, which is
what the privacy chain's tests check (the WARP endpoint's egress, the VPS, or the client itself).
Every request appends a line ``<client ip> <path>`` to the log file. Standard library only.
"""

import argparse
import http.server
import signal
import sys
import threading
import urllib.parse


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "opdbus-lab-www"
    protocol_version = "HTTP/1.1"

    def _answer(self, with_body):
        ip = self.client_address[0]
        self.server.record(ip, self.path)
        if urllib.parse.urlsplit(self.path).path == "/":
            status, body = 200, f"source={ip}\n".encode()
        else:
            status, body = 404, b"not found\n"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def do_GET(self):  # noqa: N802 (the http.server API)
        self._answer(True)

    def do_HEAD(self):  # noqa: N802
        self._answer(False)

    def log_message(self, format, *args):  # noqa: A002 (quiet: requests go to the log file)
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, log_path):
        super().__init__(address, Handler)
        self._lock = threading.Lock()
        self._log = open(log_path, "a", encoding="utf-8", buffering=1) if log_path else None

    def record(self, ip, path):
        if self._log is None:
            return
        # the path is client-controlled: keep one line per request
        path = path.replace("\n", "%0A").replace("\r", "%0D")
        with self._lock:
            self._log.write(f"{ip} {path}\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--log", help="append '<client ip> <path>' lines to this file")
    args = parser.parse_args(argv)
    server = Server((args.bind, args.port), args.log)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
