#!/usr/bin/env python3
"""python-server.py — the Python stdlib recipe's worker: http.server on the sockets
the vassal master passes (socket activation), READY=1 sent with a plain datagram
socket, and a graceful stop on SIGTERM/SIGHUP. Standard library only (Python 3.7+).
docs/recipes/README.md explains each part."""
import http.server
import os
import signal
import socket
import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit

GREETING = os.environ.get("GREETING", "hello")
SD_LISTEN_FDS_START = 3


def take_sockets():
    """fds 3 .. 3+LISTEN_FDS-1, for this pid only; the variables are removed so that
    a child of ours does not take the sockets for its own."""
    n = int(os.environ.pop("LISTEN_FDS", "0") or 0)
    mine = os.environ.pop("LISTEN_PID", "") == str(os.getpid())
    os.environ.pop("LISTEN_FDNAMES", None)
    if not mine or n < 1:
        sys.exit("no sockets: expected LISTEN_FDS/LISTEN_PID (socket activation); "
                 "run it under a vassal")
    socks = []
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + n):
        s = socket.socket(fileno=fd)      # family and type are read from the fd
        s.set_inheritable(False)
        # Shared with the other workers: a wake-up may find the queue empty already
        # (accept() then raises BlockingIOError, which socketserver ignores).
        s.setblocking(False)
        socks.append(s)
    return socks


def sd_notify(message):
    """One datagram to $NOTIFY_SOCKET ('@name' is the abstract namespace). A failure
    is logged, never fatal."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(message.encode(), path)
    except OSError as e:
        print("sd_notify: %s" % e, file=sys.stderr, flush=True)


class Handler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so a stop has no idle keep-alive
    # connection to drain. (With HTTP/1.1 keep-alive, a handler thread waits on an
    # idle client for as long as the client keeps the connection.)
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/slow":
            ms = int(parse_qs(url.query).get("ms", ["1000"])[0])
            print("slow request started in pid %d" % os.getpid(), file=sys.stderr, flush=True)
            time.sleep(min(ms, 60000) / 1000)
        body = ("%s from pid %d\n" % (GREETING, os.getpid())).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Worker-Pid", str(os.getpid()))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):    # one line per request is too much here
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = False    # server_close() waits for the requests in flight
    block_on_close = True

    def __init__(self, sock):
        super().__init__(sock.getsockname(), Handler, bind_and_activate=False)
        self.socket.close()                # the unbound socket the base class made
        self.socket = sock


def main():
    servers = [Server(s) for s in take_sockets()]
    threads = [threading.Thread(target=srv.serve_forever, args=(0.1,)) for srv in servers]
    stop_signals = {signal.SIGTERM, signal.SIGHUP}

    # The stop signals are blocked before any thread starts (threads inherit the
    # mask) and taken by sigwait() in the main thread. With a Python handler
    # instead, the kernel may deliver the signal to a server thread, and the main
    # thread, asleep in a lock or Event wait, is not woken: measured, the worker
    # then ignored SIGTERM until the master's SIGKILL.
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    for t in threads:
        t.start()
    sd_notify("READY=1\nSTATUS=serving as pid %d" % os.getpid())
    signal.sigwait(stop_signals)
    # The graceful stop: leave the accept loops, stop accepting (our copy of each
    # socket is closed; the master keeps the socket and its queue for the others),
    # finish the requests in flight, exit 0.
    sd_notify("STOPPING=1")
    for srv in servers:
        srv.shutdown()
    for srv in servers:
        srv.server_close()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
