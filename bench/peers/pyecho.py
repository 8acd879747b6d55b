"""Echo with CPython's socketserver, the reference sockhost is modelled on.

usage: pyecho.py tcp|threading|forking|udp PORT
Serves 127.0.0.1:PORT until killed. The handler is the one a socketserver
user writes: stream requests echo until the client closes, a datagram is
answered with the same bytes. request_queue_size matches sockhostd's default
(128) so neither side loses connections to a short backlog.
"""
import socketserver
import sys


class StreamEcho(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            self.request.sendall(data)


class DatagramEcho(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        sock.sendto(data, self.client_address)


SERVERS = {
    "tcp": (socketserver.TCPServer, StreamEcho),
    "threading": (socketserver.ThreadingTCPServer, StreamEcho),
    "forking": (socketserver.ForkingTCPServer, StreamEcho),
    "udp": (socketserver.UDPServer, DatagramEcho),
}


def main():
    server_class, handler = SERVERS[sys.argv[1]]
    server_class.allow_reuse_address = True
    server_class.request_queue_size = 128
    server_class.daemon_threads = True
    with server_class(("127.0.0.1", int(sys.argv[2])), handler) as server:
        print("ready", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
