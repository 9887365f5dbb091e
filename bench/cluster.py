"""cluster.py — the etcd benchmarks of issue 15, run by bench.py (--only W7,W8).

W7: a key put in etcd under PREFIX/vassals/all/ → the vassal it describes answering
HTTP on each of three emperors (--node a, b, c) fed by that etcd: per put the slowest
node, over 20 puts (8 with --quick); p50 and p99 of the whole, and of the part beyond
the worker's own start (its exec to its READY=1, the "worker 1 (pid P) ready in N ms"
line of its master); also beyond the vassal's whole start (the emperor's "NAME:
ready after N ms": spawn to READY=1, master and worker), as test_etcd_emperor's
ETCD_EMPEROR_FIGURES=1 measured it. Each put's time is also split, from the emperors' logs, into
put → the emperor spawns the master (etcd's own commit, the watch, the mirror file,
the scan, the validation, the fork), the master until it forks the worker, the
worker's own start, and READY=1 → the first answer (medians in the record's details).
W8: 1,000 keys present before the emperor starts → every vassal answers 200 on its
unix socket (time from the emperor's start); the emperor's VmRSS then. Unix sockets,
not ports: nothing else on the machine can hold one of them.

The bench starts its own etcd (Debian's etcd-server, one member) on free loopback
ports below the bench's own range (9000-9999) with a data dir in the bench's root,
and stops it by pid at the end. It does not carry the bench's mark: an emperor's
stop sweeps the marked processes, and etcd outlives them (W7's three emperors are
stopped one by one, the sweep after the last). Puts go through etcd's JSON
gateway (what `etcdctl put` does over gRPC, without the start of an etcdctl process),
timed from just before the request is sent. Stdlib only.
"""
import base64
import http.client
import json
import os
import re
import selectors
import signal
import socket
import statistics
import subprocess
import time

ETCD_PORTS = (9000, 10000)
W7_NODES = ("a", "b", "c")


def _b64(s):
    return base64.b64encode(s.encode()).decode()


def _free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


class Etcd:
    """One etcd member on loopback, its data dir under root; put/delete over HTTP."""

    def __init__(self, b, root):
        self.b = b
        ports = [p for p in range(ETCD_PORTS[0], ETCD_PORTS[1]) if _free(p)][:2]
        if len(ports) < 2:
            raise RuntimeError("no free ports for etcd in %d-%d" % ETCD_PORTS)
        self.client, self.peer = ports
        self.url = "http://127.0.0.1:%d" % self.client
        self.dir = os.path.join(root, "etcd")
        os.makedirs(self.dir, exist_ok=True)
        self.proc = None
        self.conn = None

    def start(self, timeout=20.0):
        peer = "http://127.0.0.1:%d" % self.peer
        argv = ["etcd", "--name", "bench", "--data-dir", os.path.join(self.dir, "data"),
                "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", "bench=" + peer, "--initial-cluster-state", "new"]
        env = dict(os.environ)
        env.pop(self.b.MARK_VAR, None)
        self.logf = open(os.path.join(self.dir, "etcd.log"), "w")
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("etcd exited %s (log in %s)" % (self.proc.returncode, self.dir))
            try:
                if b'"true"' in self._get("/health"):
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("etcd not healthy after %.0f s (log in %s)" % (timeout, self.dir))

    def _get(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.client, timeout=2)
        try:
            c.request("GET", path)
            return c.getresponse().read()
        finally:
            c.close()

    def _post(self, path, body):
        for attempt in (0, 1):   # a kept-alive connection the server closed: once more
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.client, timeout=10)
            try:
                self.conn.request("POST", path, json.dumps(body),
                                  {"Content-Type": "application/json"})
                r = self.conn.getresponse()
                data = r.read()
                if r.status != 200:
                    raise RuntimeError("etcd %s: HTTP %d %s" % (path, r.status, data[:200]))
                return json.loads(data)
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise

    def put(self, key, value):
        return self._post("/v3/kv/put", {"key": _b64(key), "value": _b64(value)})

    def delete_prefix(self, prefix):
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        return self._post("/v3/kv/deleterange", {"key": _b64(prefix), "range_end": _b64(end)})

    def stop(self):
        if self.conn:
            self.conn.close()
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        self.proc = None


def unix_vassal(b, name):
    """One hello-worker on unix:../NAME.sock: beside the mirror, in the run's dir."""
    return ("sockets: [{name: http, listen: \"unix:../%s.sock\"}]\n"
            "workers: {count: 1, exec: [%s], ready: notify}\n"
            % (name, os.path.join(b.BIN, "hello-worker")))


def unix_ok(path):
    """True if a GET / on the unix socket path answers 200."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect(path)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head = s.recv(64)
        return head.startswith(b"HTTP/1.1 200")
    except OSError:
        return False
    finally:
        s.close()


def node_run(b, bench, etcd, prefix, node, name):
    opts = ["--etcd", etcd.url, "--etcd-prefix", prefix, "--node", node]
    run = b.Run(bench, b.OURS, name)
    run.opts = opts + ["--control", os.path.join(run.dir, "control.sock")]
    return run


def stop_all(bench, runs):
    """Stops every emperor of runs, each by its pid, each sweep deferred to the last
    stop: a run's sweep kills whatever carries the bench's mark, the other emperors'
    vassals too."""
    mark = bench.mark
    try:
        bench.mark = mark + "-deferred"   # matches no process
        for run in runs[:-1]:
            run.stop()
    finally:
        bench.mark = mark
    if runs:
        runs[-1].stop()


class UnixPoller:
    """GET / on many unix sockets until each answers 200, without blocking on any: a
    connection stays in its socket's backlog until the worker accepts it, and is
    answered then. when[path] = monotonic time of its 200."""

    def __init__(self, paths):
        self.pending = set(paths)
        self.when = {}

    def _try(self, sel, path):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        try:
            s.connect(path)
            s.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        except OSError:
            s.close()
            return False
        sel.register(s, selectors.EVENT_READ, path)
        return True

    def run(self, timeout):
        sel = selectors.DefaultSelector()
        waiting = set()                      # paths with a connection in flight
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            for path in list(self.pending - waiting):
                if self._try(sel, path):
                    waiting.add(path)
            for key, _ in sel.select(0.002 if len(waiting) < len(self.pending) else 0.2):
                path = key.data
                try:
                    head = key.fileobj.recv(64)
                except OSError:
                    head = b""
                sel.unregister(key.fileobj)
                key.fileobj.close()
                waiting.discard(path)
                if head.startswith(b"HTTP/1.1 200"):
                    self.when[path] = time.monotonic()
                    self.pending.discard(path)
        for key in list(sel.get_map().values()):
            key.fileobj.close()
        sel.close()
        return self.when


def wait_log(run, needle, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in run.log_text():
            return True
        time.sleep(0.01)
    return False


STAMP = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})"


def stamp(text, pattern):
    """The wall time (s) of the first log line matching pattern, None if none."""
    m = re.search(STAMP + r" " + pattern, text)
    if not m:
        return None
    t = time.mktime(time.strptime(m.group(1)[:19], "%Y-%m-%d %H:%M:%S"))
    return t + int(m.group(1)[20:]) / 1000.0


def pct(vals, p):
    s = sorted(vals)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


# ---- W7 ------------------------------------------------------------------------------------

def w7_one(b, runs, etcd, k, split):
    """One put; (whole, beyond the worker's start, beyond the vassal's start) in ms for
    the slowest node."""
    name = "lat%02d" % k
    socks = {run: os.path.join(run.dir, name + ".sock") for run in runs}
    t_wall = time.time()
    t0 = time.monotonic()
    etcd.put("/w7/vassals/all/%s.yaml" % name, unix_vassal(b, name))
    split["put answered by etcd (its commit)"].append((time.monotonic() - t0) * 1000.0)
    took = {}
    deadline = t0 + 30.0
    while len(took) < len(runs) and time.monotonic() < deadline:
        for run in runs:
            if run not in took and unix_ok(socks[run]):
                took[run] = (time.monotonic() - t0) * 1000.0
        time.sleep(0.001)
    if len(took) < len(runs):
        return None
    worst = None
    for run in runs:
        text = ""
        rx = re.escape(name)
        for _ in range(200):   # the ready line may come just after the first answer
            text = run.log_text()
            if re.search(r"\[%s\].*worker 1 \(pid \d+\) ready in \d+ ms" % rx, text):
                break
            time.sleep(0.005)
        m = re.search(r"\[%s\].*worker 1 \(pid \d+\) ready in (\d+) ms" % rx, text)
        worker = float(m.group(1)) if m else 0.0
        m = re.search(r"emperor\[\d+\]: %s: ready after (\d+) ms" % rx, text)
        vassal = float(m.group(1)) if m else 0.0
        if worst is None or took[run] > worst[0]:
            worst = (took[run], took[run] - worker, took[run] - vassal)
        spawned = stamp(text, r"emperor\[\d+\]: %s: started \(pid" % rx)
        forked = stamp(text, r"vassal %s\[\d+\]: worker 1 started" % rx)
        ready = stamp(text, r"vassal %s\[\d+\]: worker 1 \(pid \d+\) ready in" % rx)
        if spawned and forked and ready:
            split["put -> master spawned"].append((spawned - t_wall) * 1000.0)
            split["master start until the worker's fork"].append((forked - spawned) * 1000.0)
            split["worker start (fork to READY=1)"].append((ready - forked) * 1000.0)
            split["READY=1 -> first answer"].append(took[run] - (ready - t_wall) * 1000.0)
    return worst


def w7(b, bench, rep, n_puts):
    b.log("W7 etcd put -> serving on 3 emperors: %d new keys under all/, one at a time"
          % n_puts)
    p50 = rep.fig("W7.p50", "put -> serving on 3 nodes, beyond the worker's start, p50",
                  "ms", b.lt(30.001), "<= 30 ms")
    p99 = rep.fig("W7.p99", "put -> serving on 3 nodes, beyond the worker's start, p99",
                  "ms", b.lt(100.001), "<= 100 ms")
    v50 = rep.fig("W7.vassal.p50", "put -> serving on 3 nodes, beyond the vassal's start "
                  "(spawn to READY=1), p50", "ms")
    v99 = rep.fig("W7.vassal.p99", "put -> serving on 3 nodes, beyond the vassal's start "
                  "(spawn to READY=1), p99", "ms")
    a50 = rep.fig("W7.all.p50", "put -> serving on 3 nodes, whole, p50", "ms")
    a99 = rep.fig("W7.all.p99", "put -> serving on 3 nodes, whole, p99", "ms")
    etcd = Etcd(b, bench.root).start()
    runs = []
    detail = {}
    try:
        for node in W7_NODES:
            runs.append(node_run(b, bench, etcd, "/w7", node, "w7-" + node).start())
        for run in runs:
            if not wait_log(run, "etcd: vassal keys read: ", 20.0):
                bench.anomaly("W7: %s never read its keys" % run.name, run.log_text())
                return detail
        whole, net, beyond = [], [], []
        split = {k: [] for k in ("put answered by etcd (its commit)", "put -> master spawned", "master start until the worker's fork",
                                 "worker start (fork to READY=1)", "READY=1 -> first answer")}
        for k in range(n_puts):
            time.sleep(0.2)
            r = w7_one(b, runs, etcd, k, split)
            if r is None:
                bench.anomaly("W7: put %d not served by every node within 30 s" % k,
                              "\n".join(run.log_text()[-3000:] for run in runs))
                continue
            whole.append(r[0])
            net.append(r[1])
            beyond.append(r[2])
        if whole:
            p50.add("emperor", pct(net, 50))
            p99.add("emperor", pct(net, 99))
            v50.add("emperor", pct(beyond, 50))
            v99.add("emperor", pct(beyond, 99))
            a50.add("emperor", pct(whole, 50))
            a99.add("emperor", pct(whole, 99))
            detail = {"whole_ms": [round(v, 1) for v in whole],
                      "beyond_worker_ms": [round(v, 1) for v in net],
                      "beyond_vassal_ms": [round(v, 1) for v in beyond],
                      "split_median_ms": {k: round(statistics.median(v), 1)
                                          for k, v in split.items() if v}}
            b.log("  where the time goes (median over every node and put): " + ", ".join(
                "%s %.1f ms" % kv for kv in detail["split_median_ms"].items()))
    finally:
        stop_all(bench, runs)
        etcd.stop()
    for fid in ("W7.p50", "W7.p99", "W7.vassal.p50", "W7.vassal.p99", "W7.all.p50",
                "W7.all.p99"):
        rep.emit(fid)
    return detail


# ---- W8 ------------------------------------------------------------------------------------

def w8(b, bench, rep, n, runs_n):
    b.log("W8 %d keys present at the emperor's start: until every vassal answers 200 (on "
          "its unix socket); the emperor's VmRSS" % n)
    ft = rep.fig("W8.time", "%d keys present at start -> all serving" % n, "s")
    fr = rep.fig("W8.emperor_rss", "%d keys: emperor VmRSS once all serve" % n, "MiB")
    etcd = Etcd(b, bench.root).start()
    try:
        for i in range(runs_n):
            prefix = "/w8-%d" % i
            names = ["v%04d" % k for k in range(n)]
            for name in names:
                etcd.put("%s/vassals/all/%s.yaml" % (prefix, name), unix_vassal(b, name))
            run = node_run(b, bench, etcd, prefix, "a", "w8")
            paths = [os.path.join(run.dir, name + ".sock") for name in names]
            t0 = b.now()
            run.start()
            done = UnixPoller(paths).run(60.0 + n * 0.5)
            if len(done) < n:
                bench.anomaly("W8: %d of %d vassals never answered" % (n - len(done), n),
                              run.log_text())
                ft.add("emperor", None)
            else:
                ft.add("emperor", max(done.values()) - t0)
                time.sleep(1.0)
                fr.add("emperor", b.rss_kib(run.pid) / 1024.0)
            run.stop()
            etcd.delete_prefix(prefix + "/")
    finally:
        etcd.stop()
    rep.emit("W8.time")
    rep.emit("W8.emperor_rss")


def run(b, bench, rep, only, quick, busy):
    """The workloads of this module that `only` names; their details for the record."""
    extra = {}
    if "W7" in only and busy("W7"):
        extra["W7"] = w7(b, bench, rep, 8 if quick else 20)
    if "W8" in only and busy("W8"):
        w8(b, bench, rep, 1000, 1 if quick else 3)
    return extra
