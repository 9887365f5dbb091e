#!/usr/bin/env python3
"""pyworker.py — the benchmarks' Python worker (issue 19): serves the WSGI app of
bench/app.py on the sockets a vassal master passes (socket activation, docs/worker.md),
so that this project and uWSGI run the same app in the same run.

One process, one thread, a selectors loop: HTTP/1.1 keep-alive (wrk keeps its
connections), GET/HEAD with or without a Content-Length body. The recipe worker
(docs/recipes/python-server.py) is http.server with a thread per connection and
HTTP/1.0, one connection per request, and is not WSGI: it cannot run the app uWSGI
runs, hence this one. Standard library only.

  - the sockets: fds 3 .. 3+LISTEN_FDS-1 when LISTEN_PID is our pid (the variables are
    removed once read);
  - READY=1 to $NOTIFY_SOCKET once the app is imported (its start cost is paid);
  - SIGTERM or SIGHUP: the graceful stop of hello-worker — stop accepting, finish the
    requests in flight, answer a request arriving on a kept-alive connection within
    IDLE_GRACE with `Connection: close`, close a connection idle that long, exit 0.
"""
import os
import selectors
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
SD_LISTEN_FDS_START = 3
IDLE_GRACE = 0.1          # s a connection may stay idle once we stop
ACCEPT_BATCH = 4          # connections taken per wake-up: new ones spread over workers
MAX_HEAD = 65536


def take_sockets():
    n = int(os.environ.pop("LISTEN_FDS", "0") or 0)
    mine = os.environ.pop("LISTEN_PID", "") == str(os.getpid())
    os.environ.pop("LISTEN_FDNAMES", None)
    if not mine or n < 1:
        sys.exit("no sockets: expected LISTEN_FDS/LISTEN_PID (socket activation); "
                 "run it under a vassal")
    socks = []
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + n):
        s = socket.socket(fileno=fd)
        s.set_inheritable(False)
        s.setblocking(False)
        socks.append(s)
    return socks


def sd_notify(message):
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


class Conn:
    def __init__(self, sock, addr):
        self.sock, self.addr = sock, addr
        self.inbuf, self.out = bytearray(), bytearray()
        self.idle_since = time.monotonic()
        self.close_after = False


class Worker:
    def __init__(self, app, listeners):
        self.app, self.listeners = app, listeners
        self.sel = selectors.DefaultSelector()
        self.conns = {}
        self.stopping = False
        for ls in listeners:
            self.sel.register(ls, selectors.EVENT_READ, None)
        self.wake_r, self.wake_w = socket.socketpair()
        for s in (self.wake_r, self.wake_w):
            s.setblocking(False)
        signal.set_wakeup_fd(self.wake_w.fileno())
        self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        signal.signal(signal.SIGTERM, self.on_stop)
        signal.signal(signal.SIGHUP, self.on_stop)

    def on_stop(self, signum, frame):
        if self.stopping:
            return
        self.stopping = True
        sd_notify("STOPPING=1")
        for ls in self.listeners:
            self.sel.unregister(ls)
            ls.close()
        self.listeners = []

    def accept(self, ls):
        for _ in range(ACCEPT_BATCH):
            try:
                sock, addr = ls.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c = Conn(sock, addr)
            self.conns[sock] = c
            self.sel.register(sock, selectors.EVENT_READ, c)

    def close(self, c):
        self.sel.unregister(c.sock)
        del self.conns[c.sock]
        c.sock.close()

    def environ(self, c, method, target, version, headers, body):
        path, _, query = target.partition("?")
        env = {"REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path,
               "QUERY_STRING": query, "SERVER_PROTOCOL": version,
               "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "0",
               "REMOTE_ADDR": str(c.addr[0]) if c.addr else "",
               "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
               "wsgi.input": __import__("io").BytesIO(body), "wsgi.errors": sys.stderr,
               "wsgi.multithread": False, "wsgi.multiprocess": True,
               "wsgi.run_once": False}
        for k, v in headers.items():
            key = k.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                env[key] = v
            else:
                env["HTTP_" + key] = v
        return env

    def respond(self, c, env, keep):
        status_hdrs = []

        def start_response(status, headers, exc_info=None):
            status_hdrs[:] = [status, headers]
        chunks = self.app(env, start_response)
        body = b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()
        status, headers = status_hdrs
        keep = keep and not self.stopping
        head = ["HTTP/1.1 %s" % status]
        head += ["%s: %s" % h for h in headers]
        if not any(k.lower() == "content-length" for k, _ in headers):
            head.append("Content-Length: %d" % len(body))
        if not keep:
            head.append("Connection: close")
            c.close_after = True
        c.out += ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if env["REQUEST_METHOD"] != "HEAD":
            c.out += body

    def parse(self, c):
        """Answers every complete request in c.inbuf; False on a malformed one."""
        while not c.close_after:
            end = c.inbuf.find(b"\r\n\r\n")
            if end < 0:
                return len(c.inbuf) <= MAX_HEAD
            lines = bytes(c.inbuf[:end]).decode("latin-1").split("\r\n")
            try:
                method, target, version = lines[0].split(" ", 2)
            except ValueError:
                return False
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().title()] = v.strip()
            length = int(headers.get("Content-Length", "0") or 0)
            if len(c.inbuf) < end + 4 + length:
                return True
            body = bytes(c.inbuf[end + 4:end + 4 + length])
            del c.inbuf[:end + 4 + length]
            conn = headers.get("Connection", "").lower()
            keep = conn != "close" if version == "HTTP/1.1" else conn == "keep-alive"
            self.respond(c, self.environ(c, method, target, version, headers, body), keep)
        return True

    def flush(self, c):
        while c.out:
            try:
                n = c.sock.send(c.out)
            except (BlockingIOError, InterruptedError):
                self.sel.modify(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
                return
            except OSError:
                return self.close(c)
            del c.out[:n]
        c.idle_since = time.monotonic()
        if c.close_after:
            return self.close(c)
        self.sel.modify(c.sock, selectors.EVENT_READ, c)

    def readable(self, c):
        try:
            data = c.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return self.close(c)
        if not data:
            return self.close(c)
        c.inbuf += data
        if not self.parse(c):
            return self.close(c)
        self.flush(c)

    def sweep_idle(self):
        t = time.monotonic()
        for c in list(self.conns.values()):
            if not c.out and not c.inbuf and t - c.idle_since >= IDLE_GRACE:
                self.close(c)

    def run(self):
        while not (self.stopping and not self.conns):
            for key, mask in self.sel.select(IDLE_GRACE / 4 if self.stopping else None):
                if key.data is None:
                    self.accept(key.fileobj)
                elif key.data == "wake":
                    try:
                        self.wake_r.recv(256)
                    except OSError:
                        pass
                elif key.fileobj in self.conns:
                    if mask & selectors.EVENT_READ:
                        self.readable(key.data)
                    elif key.data.sock in self.conns:
                        self.flush(key.data)
            if self.stopping:
                self.sweep_idle()


def main():
    # a stop before the app is imported and serving: nothing in flight, exit at once
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: os._exit(0))
    listeners = take_sockets()
    from app import application       # pays the app's start cost (BENCH_APP_START_MS)
    worker = Worker(application, listeners)
    sd_notify("READY=1\nSTATUS=serving as pid %d" % os.getpid())
    worker.run()


if __name__ == "__main__":
    main()
