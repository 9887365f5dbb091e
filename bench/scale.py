"""W13 scale-up: from a sustained backlog to the added worker serving (issue 17).

One vassal, workers.count 1..2, hello-worker --max-conns 1 (one connection at a time:
the next waits in the accept queue), scale: {up-when-backlog: 1, up-after: UP_AFTER}.
A run: a slow request occupies worker 1; at t0 a second connection is made and waits in
the accept queue (the backlog begins); t1 is when its answer comes, from the added
worker 2. The figure is t1 - t0 - up-after: what the master adds to the backlog's own
sustain time (its sampling, the spawn, the worker's start to READY=1, its accept).
Between runs the count comes back to 1 (down-after). Loopback only; every process is
stopped by the Run's pid and swept by the bench's mark. Imported by bench.py's main().
"""
import os
import socket
import time

import bench as B

UP_AFTER = 0.2       # the config's default
DOWN_AFTER = 0.5
SLOW_MS = 1500       # worker 1's request, long enough to cover the scale-up


class Scaled(B.Ours):
    """Our emperor with one scaled vassal; the binaries of the bench's snapshot."""

    def __init__(self, root):
        super().__init__("emperor")
        self.bin = os.path.join(root, "bin")

    def argv(self, vdir, opts=()):
        return [os.path.join(self.bin, "emperor")] + list(opts) + [vdir]

    def vassal_text(self, port, workers=1, reload="graceful", aux=None, keepalive=True):
        return ("sockets:\n"
                "  - {name: http, listen: \"%s:%d\"}\n"
                "workers:\n"
                "  count: 1..2\n"
                "  exec: [%s, --max-conns, \"1\"]\n"
                "  ready: notify\n"
                "  scale: {up-when-backlog: 1, up-after: %dms, down-after: %dms}\n"
                "reload: chain\n") % (B.HOST, port, os.path.join(self.bin, "hello-worker"),
                                      UP_AFTER * 1000, DOWN_AFTER * 1000)


def connect(port, path):
    s = socket.create_connection((B.HOST, port), timeout=10)
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
               % (path, B.HOST)).encode())
    return s


def answer(s):
    """(status, worker id) of the response on s, read until the server closes."""
    buf = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    s.close()
    status, _, _ = B.parse_response(buf)
    wid = None
    for line in buf.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"x-worker-id":
            wid = value.strip().decode()
    return status, wid


def worker_count(run):
    """The workers of the run's only vassal master."""
    kids = B.children_map()
    masters = kids.get(run.pid, [])
    return len(kids.get(masters[0], [])) if masters else 0


def wait_workers(run, n, timeout):
    deadline = B.now() + timeout
    while B.now() < deadline:
        if worker_count(run) == n:
            return True
        time.sleep(0.02)
    return False


def one_run(bench, run, port):
    """One scale-up: the added worker's answer, seconds after the backlog began minus
    up-after; None (and an anomaly) if it did not come from worker 2."""
    busy = connect(port, "/slow?ms=%d" % SLOW_MS)
    time.sleep(0.1)                      # worker 1 has taken it: the next one queues
    t0 = B.now()
    waiting = connect(port, "/")
    status, wid = answer(waiting)
    t1 = B.now()
    answer(busy)
    if status != 200 or wid != "2":
        bench.anomaly("W13: the queued request got %s from worker %s, expected 200 from "
                      "worker 2" % (status, wid), run.log_text())
        return None
    return t1 - t0 - UP_AFTER


def w13(bench, rep, quick):
    B.log("W13 scale-up: a connection waits in the accept queue of a 1..2 vassal; until "
          "the added worker answers it, less up-after (%.0f ms)" % (UP_AFTER * 1000))
    f = rep.fig("W13", "scale-up, backlog to the added worker serving", "ms")
    system = Scaled(bench.root)
    port = bench.ports("emperor", 1)[0]
    run = B.Run(bench, system, "w13")
    run.write([("scaled", system.vassal_text(port))])
    run.start()
    if B.wait_all_ok(run, [port], 30.0, "W13 start") is None:
        run.stop()
        return
    for _ in range(3 if quick else 10):
        if not wait_workers(run, 1, 30.0):
            bench.anomaly("W13: the vassal did not come back to 1 worker", run.log_text())
            break
        value = one_run(bench, run, port)
        f.add(system.label, None if value is None else value * 1000.0)
    run.stop()
    rep.emit("W13")
