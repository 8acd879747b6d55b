"""The http-hello answer from CPython's http.server (ThreadingHTTPServer).

usage: pyhttp.py PORT BODY
Serves GET and HEAD on 127.0.0.1:PORT with BODY, HTTP/1.1 with keep-alive
(protocol_version), Content-Length set, no request logging, until killed.
Nagle is off (disable_nagle_algorithm): http.server sends the head and the
body in two writes, and with Nagle on every keep-alive answer would wait
for the client's delayed ACK (about 40 ms).
"""
import http.server
import sys


class Hello(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    body = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(self.body)

    do_HEAD = do_GET

    def log_message(self, format, *args):
        pass


def main():
    Hello.body = sys.argv[2].encode()
    http.server.ThreadingHTTPServer.request_queue_size = 128
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Hello)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
