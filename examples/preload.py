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
  - for each "fork ID\\n" (with the worker's output pipe attached, SCM_RIGHTS: the
    worker's stdout and stderr) forks twice: the middle process forks the worker and exits,
    the template reaps it, so the worker's parent is the master (a subreaper); then
    answers "forked ID PID\\n" ("failed ID WHY\\n" if fork failed);
  - exits at SIGTERM, or when the control socket closes (the master is gone).
A worker: its own process group, the control socket closed, VASSAL_WORKER_ID=ID,
WATCHDOG_PID=its pid, PR_SET_PDEATHSIG once the master is its parent; it serves the app
on the sockets (HTTP/1.0, one request per connection and one at a time, a small server
of this file: http.server and wsgiref would cost the template ~50 ms of imports), says
READY=1 on $NOTIFY_SOCKET, and at SIGTERM (or SIGHUP) stops accepting, finishes its
request and exits 0.
"""
import ctypes
import importlib
import os
import select
import signal
import socket
import sys
import time

PR_SET_PDEATHSIG = 1
MAX_LINE = 65536    # bytes of a request line or header line
MAX_HEADERS = 100
IO_TIMEOUT = 30.0   # seconds a client may take to send its request or read the answer
HEX = frozenset(b"0123456789abcdefABCDEF")


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


# ---- the worker's HTTP/1.0 server: one request per connection, one at a time ----------

class BadRequest(Exception):
    pass


class ClientGone(Exception):
    """Sending the answer failed: the client went away or was too slow."""


class Input:
    """wsgi.input: the request body, at most CONTENT_LENGTH bytes, then end of file."""

    def __init__(self, rfile, length):
        self.rfile, self.left = rfile, length

    def read(self, size=-1):
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = self.rfile.read(size) if size else b""
        self.left -= len(data)
        return data

    def readline(self, size=-1):
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = self.rfile.readline(size) if size else b""
        self.left -= len(data)
        return data

    def readlines(self, hint=-1):
        return list(iter(self.readline, b""))

    def __iter__(self):
        return iter(self.readline, b"")


def unquote(path):
    """%XX escapes of a latin-1 path decoded, as PEP 3333 wants PATH_INFO."""
    if "%" not in path:
        return path
    parts = path.encode("latin-1").split(b"%")
    out = [parts[0]]
    for p in parts[1:]:
        if len(p) >= 2 and p[0] in HEX and p[1] in HEX:
            out.append(bytes((int(p[:2], 16),)) + p[2:])
        else:
            out.append(b"%" + p)
    return b"".join(out).decode("latin-1")


def read_request(rfile, base, addr):
    """The WSGI environ of the request on rfile; None if the client sent nothing."""
    line = rfile.readline(MAX_LINE + 1)
    if not line:
        return None
    words = line.decode("latin-1").rstrip("\r\n").split()
    if len(words) != 3 or not words[2].startswith("HTTP/") or len(line) > MAX_LINE:
        raise BadRequest("bad request line")
    env = dict(base)
    path, _, query = words[1].partition("?")
    env.update({"REQUEST_METHOD": words[0], "PATH_INFO": unquote(path),
                "QUERY_STRING": query, "SERVER_PROTOCOL": words[2],
                "REMOTE_ADDR": addr[0] if isinstance(addr, tuple) else ""})
    for _ in range(MAX_HEADERS + 1):
        line = rfile.readline(MAX_LINE + 1)
        if line in (b"\r\n", b"\n"):
            break
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon or len(line) > MAX_LINE or not line.endswith(b"\n"):
            raise BadRequest("bad header line")
        if "_" in name:
            continue  # Foo_Bar would pass for Foo-Bar: dropped, as wsgiref does
        key, value = name.strip().upper().replace("-", "_"), value.strip()
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        env[key] = env[key] + "," + value if key in env else value
    else:
        raise BadRequest("too many header lines")
    try:
        length = int(env.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise BadRequest("bad Content-Length") from None
    env["wsgi.input"] = Input(rfile, max(0, length))
    return env


def respond(conn, app, env):
    """Runs the app on env and sends its answer (HTTP/1.0: the close ends the body);
    an app that fails gets its traceback on stderr and, if nothing went out, a 500."""
    head = []       # [status, headers] once start_response was called
    sent = []       # the head went out

    def write(data):
        if not head:
            raise AssertionError("write() before start_response()")
        if env["REQUEST_METHOD"] == "HEAD":
            data = b""
        if not sent:  # the head goes out with the first piece of the body
            lines = ["HTTP/1.0 %s\r\n" % head[0]]
            lines += ["%s: %s\r\n" % kv for kv in head[1]]
            if not any(k.lower() == "date" for k, _ in head[1]):
                lines.append(time.strftime("Date: %a, %d %b %Y %H:%M:%S GMT\r\n",
                                           time.gmtime()))
            data = ("".join(lines) + "\r\n").encode("latin-1") + data
            sent.append(1)
        if data:
            send(conn, data)

    def start_response(status, headers, exc_info=None):
        if exc_info and sent:
            raise exc_info[1].with_traceback(exc_info[2])
        if head and not exc_info:
            raise AssertionError("start_response() called twice")
        head[:] = [status, list(headers)]
        return write

    try:
        result = app(env, start_response)
        try:
            for data in result:
                write(data)
            write(b"")  # an empty body: the head still goes out
        finally:
            if hasattr(result, "close"):
                result.close()
    except ClientGone:
        raise
    except Exception:
        import traceback  # only when the app fails
        traceback.print_exc()
        if not sent:
            answer(conn, b"500 Internal Server Error", b"")


def send(conn, data):
    try:
        conn.sendall(data)
    except OSError as e:
        raise ClientGone(e) from None


def answer(conn, status, body):
    try:
        conn.sendall(b"HTTP/1.0 %s\r\nContent-Length: %d\r\n\r\n%s"
                     % (status, len(body), body))
    except OSError:
        pass  # the client is gone


def handle(conn, addr, app, base):
    conn.settimeout(IO_TIMEOUT)
    rfile = conn.makefile("rb")
    try:
        env = read_request(rfile, base, addr)
        if env is not None:
            respond(conn, app, env)
    except BadRequest as e:
        answer(conn, b"400 Bad Request", str(e).encode() + b"\n")
    except (OSError, ClientGone):
        pass  # the client went away or was too slow
    finally:
        rfile.close()
        try:
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        conn.close()


def base_environ(listener):
    """The environ keys every request on listener shares."""
    name = listener.getsockname()
    host, port = (name[0], str(name[1])) if isinstance(name, tuple) else ("localhost", "0")
    return {"SERVER_NAME": host, "SERVER_PORT": port, "SCRIPT_NAME": "",
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
            "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False}


def serve(app, listeners):
    stopping = []
    # the stop signal wakes select() at once: its handler flags it, the wake-up fd
    # makes select() return (a select() being retried after the handler would not)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGHUP, lambda *_: stopping.append(1))
    by_fd = {ls.fileno(): (ls, base_environ(ls)) for ls in listeners}
    fds = list(by_fd) + [wake_r]
    sd_notify("READY=1\nSTATUS=serving as pid %d" % os.getpid())
    while not stopping:
        try:
            ready, _, _ = select.select(fds, [], [])
        except InterruptedError:
            continue
        for fd in ready:
            if stopping:
                break
            if fd == wake_r:
                os.read(wake_r, 64)
                continue
            listener, base = by_fd[fd]
            try:
                conn, addr = listener.accept()  # a lost race returns at once
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                continue
            handle(conn, addr, app, base)
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


def fork_worker(app, listeners, ctl, wid, out, others):
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
            for fd in others:  # the pipes of requests not served yet
                os.close(fd)
            if out >= 0:  # the worker's own output pipe, from the request
                os.dup2(out, 1)
                os.dup2(out, 2)
                os.close(out)
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
    pipes = []  # each "fork" request's output pipe, in the order of the requests
    while True:
        data, fds, _, _ = socket.recv_fds(ctl, 4096, 16)
        if not data:
            os._exit(0)  # the master closed it: it is gone
        buf += data
        pipes += fds
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            verb, _, arg = line.decode().partition(" ")
            if verb != "fork":
                continue
            out = pipes.pop(0) if pipes else -1
            try:
                pid = fork_worker(app, listeners, ctl, int(arg), out, pipes)
                ctl.sendall(b"forked %s %d\n" % (arg.encode(), pid) if pid else
                            b"failed %s fork\n" % arg.encode())
            except OSError as e:
                ctl.sendall(b"failed %s %s\n" % (arg.encode(), str(e).encode()))
            finally:
                if out >= 0:
                    os.close(out)


MASTER = 0

if __name__ == "__main__":
    main()
