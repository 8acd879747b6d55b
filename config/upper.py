"""The upper-caser of Python's socketserver documentation, served by
sockhostd through libsockhost_python.so (see the `upper` listener in
sockhost.toml): the class runs unchanged under CPython's own TCPServer.

    python3 config/upper.py          # CPython's socketserver on port 7008
"""
import socketserver


class UpperHandler(socketserver.StreamRequestHandler):
    def handle(self):
        # One reply line per line received, until the client closes.
        for line in self.rfile:
            print(f"{self.client_address[0]} wrote: {line!r}")
            self.wfile.write(line.upper())


if __name__ == "__main__":
    with socketserver.TCPServer(("127.0.0.1", 7008), UpperHandler) as server:
        server.serve_forever()
