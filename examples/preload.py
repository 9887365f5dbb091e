#!/usr/bin/env python3
"""preload.py — a template for `workers.preload: true` (docs/worker.md, "Preloaded
workers"): imports a WSGI app once, then forks the workers the vassal master asks
for. Standard library only.

    workers:
      exec: [python3, preload.py, app:application]   # MODULE:CALLABLE, MODULE on sys.path
      preload: true
      ready: notify
      count: 4

The template (started like a worker, VASSAL_WORKER_ID=0):
  - takes the sockets at fds 3.. (LISTEN_FDS) and the control socket at
    $EMPEROR_PRELOAD_FD;
  - imports the app (its start cost is paid once), then writes "ready\\n";
  - for each "fork ID\\n" forks twice: the middle process forks the worker and exits,
    the template reaps it, so the worker's parent is the master (a subreaper); then
    answers "forked ID PID\\n" ("failed ID WHY\\n" if fork failed);
  - exits at SIGTERM, or when the control socket closes (the master is gone).
A worker: its own process group, the control socket closed, VASSAL_WORKER_ID=ID,
WATCHDOG_PID=its pid, PR_SET_PDEATHSIG once the master is its parent; it serves the app
on the sockets (wsgiref, HTTP/1.0, one request at a time), says READY=1 on
$NOTIFY_SOCKET, and at SIGTERM stops accepting, finishes its request and exits 0.
"""
import ctypes
import importlib
import os
import select
import signal
import socket
import sys
import time
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

PR_SET_PDEATHSIG = 1


def take_sockets():
    n = int(os.environ.pop("LISTEN_FDS", "0") or 0)
    if os.environ.pop("LISTEN_PID", "") != str(os.getpid()) or n < 1:
        sys.exit("preload.py: no sockets (LISTEN_FDS): run it as a vassal's workers")
    os.environ.pop("LISTEN_FDNAMES", None)
    socks = [socket.socket(fileno=fd) for fd in range(3, 3 + n)]
    for s in socks:
        s.setblocking(False)  # workers race for each connection: the losers go on
    return socks


def sd_notify(message):
    path = os.environ.get("NOTIFY_SOCKET", "")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(message.encode(), path)


class Handler(WSGIRequestHandler):
    def log_message(self, *args):
        pass  # no line per request


class Server(WSGIServer):
    def __init__(self, listener, app):
        super().__init__(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = listener
        self.server_name, self.server_port = "localhost", 0
        self.setup_environ()
        self.set_app(app)


def serve(app, listeners):
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGHUP, lambda *_: stopping.append(1))
    servers = {ls.fileno(): Server(ls, app) for ls in listeners}
    sd_notify("READY=1\nSTATUS=serving as pid %d" % os.getpid())
    while not stopping:
        try:
            ready, _, _ = select.select(list(servers), [], [], 0.5)
        except InterruptedError:
            continue
        for fd in ready:
            if not stopping:
                # accept (non-blocking: a lost race returns at once), answer, close
                servers[fd]._handle_request_noblock()
    os._exit(0)


def worker(app, listeners, ctl, wid, middle, master):
    os.setpgid(0, 0)  # not the template's group: its stop does not reach us
    ctl.close()
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    os.environ["VASSAL_WORKER_ID"] = str(wid)
    os.environ["WATCHDOG_PID"] = str(os.getpid())
    deadline = time.monotonic() + 5
    while os.getppid() == middle and time.monotonic() < deadline:
        time.sleep(0.001)  # the middle process exits at once: then the master adopts us
    try:  # die with the master, as an exec'd worker does
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != master:
        os._exit(1)  # the master is gone already
    serve(app, listeners)


def fork_worker(app, listeners, ctl, wid):
    r, w = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.close(r)
        me = os.getpid()
        try:
            pid = os.fork()
        except OSError:
            os._exit(1)
        if pid == 0:
            os.close(w)
            worker(app, listeners, ctl, wid, middle=me, master=MASTER)
        os.write(w, str(pid).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        pid = f.read()
    os.waitpid(middle, 0)  # reaped: the worker's parent is the master from now on
    return int(pid) if pid else 0


def main():
    global MASTER
    if len(sys.argv) != 2 or ":" not in sys.argv[1]:
        sys.exit("usage: preload.py MODULE:CALLABLE")
    MASTER = os.getppid()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    listeners = take_sockets()
    ctl = socket.socket(fileno=int(os.environ.pop("EMPEROR_PRELOAD_FD")))
    sys.path.insert(0, os.getcwd())
    module, _, name = sys.argv[1].partition(":")
    app = getattr(importlib.import_module(module), name)  # the one load
    ctl.sendall(b"ready\n")
    buf = b""
    while True:
        data = ctl.recv(4096)
        if not data:
            os._exit(0)  # the master closed it: it is gone
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            verb, _, arg = line.decode().partition(" ")
            if verb != "fork":
                continue
            try:
                pid = fork_worker(app, listeners, ctl, int(arg))
                ctl.sendall(b"forked %s %d\n" % (arg.encode(), pid) if pid else
                            b"failed %s fork\n" % arg.encode())
            except OSError as e:
                ctl.sendall(b"failed %s %s\n" % (arg.encode(), str(e).encode()))


MASTER = 0

if __name__ == "__main__":
    main()
