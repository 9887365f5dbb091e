#!/usr/bin/env python3
"""bench.py — the benchmarks of issues 9 and 19: the emperor against uWSGI's Emperor,
supervisord and PM2, with two apps.

Run by bench/run (`make bench`). Each workload starts an emperor of each system on a
directory of its own under a temporary root, measures from outside (HTTP on loopback,
/proc), stops it by pid and checks that no process it started is left. Timing is
time.monotonic(); HTTP is raw non-blocking sockets polled every 1-5 ms (more apart
when hundreds of ports are polled at once, see poll_delay()). Stdlib only.

Workloads: W1 reaction to a new file, W2 touch reload, W3 scale (time and memory),
W4 idle cost, W5 zero downtime under wrk, W6 full reload on SIGHUP; each with the C
reference worker and with the Python app (apps.py), figure ids naming the app
(W5.python.chain.p99_ms). supervisord and PM2 (peers.py) join W1, W2 and W5. The
figures are printed one line each (min / median / max over the runs, ratio to each
other system, target) and appended as one JSON object to bench/results/results.jsonl.
With --only: W7, W8 (etcd, cluster.py), W11, W12 (on-demand, demand.py), W13
(scale-up, scale.py), W9, W10 (legion handovers, legion.py), with the C worker; W14
(four Python workers per vassal, ours preloaded against uWSGI's fork after load,
preforked.py), with the Python app whatever --app says.
"""
import argparse
import datetime
import errno
import heapq
import json
import os
import platform
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

import apps as apps_mod  # the two apps every workload runs with (issue 19)
import peers            # supervisord and PM2 (issue 19)
from table import fmt  # one number format for the console lines and the docs table

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(REPO, os.environ.get("EMPEROR_BUILD", "build"))
RESULTS = os.path.join(REPO, "bench", "results")
MARK_VAR = "EMPEROR_BENCH_MARK"
IDLE_VAR = "EMPEROR_BENCH_IDLE"  # W3's idle processes (--host-procs)
HOST = "127.0.0.1"
BIN = BUILD     # replaced by a snapshot of the binaries (Bench.snapshot) for the run
# Port ranges, one per system, outside the kernel's ephemeral range (32768-60999) and
# outside 20000-31999, where the project's integration tests pick random ports.
PORTS_EMPEROR = (10000, 15000)
PORTS_UWSGI = (15000, 18000)
PORTS_PEERS = {"supervisord": (18000, 19000), "pm2": (19000, 20000)}


def log(msg):
    print(msg, flush=True)


def now():
    return time.monotonic()


# ---- /proc ---------------------------------------------------------------------------

def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return None


def proc_stat(pid):
    """State and ppid of a process, or None if it is gone."""
    text = read_text("/proc/%d/stat" % pid)
    if not text:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return {"state": fields[0], "ppid": int(fields[1])}


def proc_switches(pid):
    """(voluntary, involuntary) context switches summed over the process's threads."""
    vol = invol = 0
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return None
    for tid in tids:
        text = read_text("/proc/%d/task/%s/status" % (pid, tid)) or ""
        for line in text.splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                vol += int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches:"):
                invol += int(line.split()[1])
    return vol, invol


def proc_cpu_ns(pid):
    """CPU time in ns summed over the process's threads (/proc/PID/task/*/schedstat:
    nanoseconds, where /proc/PID/stat counts 10 ms ticks)."""
    total = 0
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return None
    for tid in tids:
        text = read_text("/proc/%d/task/%s/schedstat" % (pid, tid))
        if text:
            total += int(text.split()[0])
    return total


def proc_kib(pid, path, key):
    text = read_text("/proc/%d/%s" % (pid, path)) or ""
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def rss_kib(pid):
    return proc_kib(pid, "status", "VmRSS")


def anon_kib(pid):
    return proc_kib(pid, "status", "RssAnon")


def pss_kib(pid):
    return proc_kib(pid, "smaps_rollup", "Pss")


def cmdline(pid):
    text = read_text("/proc/%d/cmdline" % pid) or ""
    return text.replace("\0", " ").strip()


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def children_map():
    kids = {}
    for pid in all_pids():
        st = proc_stat(pid)
        if st:
            kids.setdefault(st["ppid"], []).append(pid)
    return kids


def descendants(root, kids=None):
    kids = kids if kids is not None else children_map()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        for c in kids.get(pid, []):
            out.append(c)
            todo.append(c)
    return out


def marked_pids(mark):
    """Live processes whose environment carries our mark (zombies have none)."""
    needle = ("%s=%s" % (MARK_VAR, mark)).encode()
    found = []
    for pid in all_pids():
        if pid == os.getpid():
            continue
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                env = f.read()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            found.append(pid)
    return found


# ---- HTTP polling ----------------------------------------------------------------------

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def parse_response(buf):
    """(status, pid, complete) of a response buffer; status None until the head is in."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return None, None, False
    lines = bytes(buf[:head_end]).decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        status = -1
    pid, length = None, None
    for line in lines[1:]:
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "x-worker-pid":
            pid = int(value.strip())
        elif key == "content-length":
            length = int(value.strip())
    complete = length is not None and len(buf) - head_end - 4 >= length
    return status, pid, complete


class Poller:
    """Polls many ports at once until want(port, status, pid) holds for each.

    One request in flight per port at most; a refused connection, a reset, or an
    answer that is not wanted yet is retried `retry` seconds later. run() returns
    {port: monotonic time the wanted answer was complete}."""

    def __init__(self, ports, want, retry, req_timeout=5.0):
        self.ports, self.want, self.retry, self.req_timeout = list(ports), want, retry, req_timeout
        self.sel = selectors.DefaultSelector()
        self.heap, self.seq = [], 0
        self.inflight = {}
        self.done = {}
        self.attempts = 0
        self.answers = 0

    def _due(self, port, at):
        self.seq += 1
        heapq.heappush(self.heap, (at, self.seq, port))

    def _start(self, port):
        self.attempts += 1
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex((HOST, port))
        if err not in (0, errno.EINPROGRESS):
            s.close()
            self._due(port, now() + self.retry)
            return
        st = {"port": port, "sock": s, "buf": bytearray(), "started": now(), "sent": False}
        self.inflight[s] = st
        self.sel.register(s, selectors.EVENT_WRITE, st)

    def _finish(self, st, retry_at):
        s = st["sock"]
        self.sel.unregister(s)
        del self.inflight[s]
        s.close()
        if retry_at is not None:
            self._due(st["port"], retry_at)

    def _event(self, st):
        s = st["sock"]
        if not st["sent"]:
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                return self._finish(st, now() + self.retry)
            try:
                s.send(REQUEST)
            except OSError:
                return self._finish(st, now() + self.retry)
            st["sent"] = True
            self.sel.modify(s, selectors.EVENT_READ, st)
            return None
        try:
            data = s.recv(65536)
        except OSError:
            return self._finish(st, now() + self.retry)
        st["buf"] += data
        status, pid, complete = parse_response(st["buf"])
        if not (complete or (not data and status is not None)):
            if not data:
                return self._finish(st, now() + self.retry)
            return None
        t = now()
        self.answers += 1
        if self.want(st["port"], status, pid):
            self.done[st["port"]] = t
            return self._finish(st, None)
        return self._finish(st, t + self.retry)

    def run(self, timeout):
        deadline = now() + timeout
        for port in self.ports:
            self._due(port, 0.0)
        last_sweep = now()
        while len(self.done) < len(self.ports):
            t = now()
            if t > deadline:
                break
            while self.heap and self.heap[0][0] <= t:
                self._start(heapq.heappop(self.heap)[2])
            if t - last_sweep > 0.05:
                last_sweep = t
                for st in [st for st in self.inflight.values()
                           if t - st["started"] > self.req_timeout]:
                    self._finish(st, t)
            wait = self.heap[0][0] - now() if self.heap else 0.05
            for key, _ in self.sel.select(max(0.0, min(wait, 0.05))):
                self._event(key.data)
        for st in list(self.inflight.values()):
            self._finish(st, None)
        self.sel.close()
        return self.done


def poll_delay(n):
    """Retry delay when polling n ports: 1 ms for one port, about 2,000-5,000 attempts
    per second in all for many, so that the poller does not take a core from the
    processes it measures (the resolution of a figure is this delay)."""
    return min(0.1, max(0.001, n / 5000.0))


def want_ok(port, status, pid):
    return status == 200


def get_pids(ports, timeout=10.0):
    """The worker pid answering on each port now (one request each)."""
    seen = {}

    def want(port, status, pid):
        if status == 200:
            seen[port] = pid
            return True
        return False
    Poller(ports, want, 0.005).run(timeout)
    return seen


# ---- the two systems -------------------------------------------------------------------

class Ours:
    """The emperor of this repository, with build/examples/hello-worker as the worker."""
    kind = "emperor"
    ext = ".yaml"
    stop_signal = signal.SIGTERM

    def __init__(self, label="emperor", extra=(), app=apps_mod.C):
        self.label, self.extra, self.app = label, list(extra), app

    def argv(self, vdir, opts=()):
        return [os.path.join(BIN, "emperor")] + self.extra + list(opts) + [vdir]

    def vassal_text(self, port, workers=1, reload="graceful", aux=None, keepalive=True):
        return ("sockets:\n"
                "  - {name: http, listen: \"%s:%d\"}\n"
                "workers:\n"
                "  count: %d\n"
                "%s"
                "  ready: notify\n"
                "reload: %s\n") % (HOST, port, workers, self.app.vassal_worker_yaml(), reload)

    def reloads_in_log(self, text):
        return len(re.findall(r": reloaded \(", text))


class Uwsgi:
    """uWSGI 2.0's Emperor with the python3 plugin and bench/app.py."""
    kind = "uwsgi"
    ext = ".ini"
    stop_signal = signal.SIGINT

    def __init__(self, label, extra=(), app=apps_mod.C):
        self.label, self.extra, self.app = label, list(extra), app

    def argv(self, vdir, opts=()):
        return ["uwsgi", "--emperor", vdir] + self.extra + list(opts)

    def vassal_text(self, port, workers=1, reload="graceful", aux=None, keepalive=False):
        # http11-socket keeps connections alive (for wrk); http-socket closes each one
        # after its response without saying so, which wrk counts as a read error
        text = ("[uwsgi]\n"
                "plugin = python3\n"
                + ("http11-socket" if keepalive else "http-socket") + " = %s:%d\n"
                "wsgi-file = %s\n"
                "master = true\n"
                "processes = %d\n"
                "disable-logging = true\n") % (HOST, port, self.app.app_py, workers)
        text += self.app.uwsgi_ini()
        if reload == "chain":
            text += "lazy-apps = true\nmaster-fifo = %s\n" % aux
        return text

    def reloads_in_log(self, text):
        return (len(re.findall(r"^binary reloading uWSGI", text, re.M))
                + len(re.findall(r"chain reloading complete", text)))


# ---- one emperor instance ----------------------------------------------------------------

class Bench:
    """The run's state: temporary root, process mark, ports, anomalies, leftovers."""

    def __init__(self, mark, keep):
        self.mark, self.keep = mark, keep
        self.root = tempfile.mkdtemp(prefix="emperor-bench.")
        self.port_start = {"emperor": PORTS_EMPEROR[0], "uwsgi": PORTS_UWSGI[0]}
        self.port_end = {"emperor": PORTS_EMPEROR[1], "uwsgi": PORTS_UWSGI[1]}
        for kind, (lo, hi) in PORTS_PEERS.items():
            self.port_start[kind], self.port_end[kind] = lo, hi
        self.next_port = dict(self.port_start)
        self.anomalies, self.leftovers = [], []
        self.live = []
        self.n = 0

    def snapshot(self):
        """Copies the binaries under test into the root: other work in the tree may
        rebuild build/ meanwhile, and an exec of a file being linked fails."""
        global BIN
        BIN = os.path.join(self.root, "bin")
        os.makedirs(BIN)
        for src in ("emperor", "vassal", os.path.join("examples", "hello-worker")):
            shutil.copy2(os.path.join(BUILD, src), BIN)
        for app in apps_mod.APPS.values():
            app.snapshot(BIN)

    def ports(self, kind, n):
        """n ports of the system's range that nothing listens on now, taken in turn
        (the range wraps around; a port freed by an earlier run can be bound again)."""
        out, tried = [], 0
        while len(out) < n:
            port = self.next_port[kind]
            self.next_port[kind] = port + 1 if port + 1 < self.port_end[kind] \
                else self.port_start[kind]
            tried += 1
            if tried > self.port_end[kind] - self.port_start[kind]:
                raise RuntimeError("no %d free ports in the %s range" % (n, kind))
            if port_free(port):
                out.append(port)
        return out

    def anomaly(self, what, evidence=""):
        log("  ANOMALY: %s" % what)
        self.anomalies.append({"what": what, "evidence": evidence[-4000:]})

    def cleanup(self):
        for run in list(self.live):
            run.stop()
        if not self.keep and not self.anomalies:
            shutil.rmtree(self.root, ignore_errors=True)


class Run:
    """One emperor on its own directory; stop() stops it by pid and sweeps leftovers."""

    def __init__(self, bench, system, name, opts=()):
        bench.n += 1
        self.bench, self.system, self.opts = bench, system, list(opts)
        self.name = "%02d-%s-%s" % (bench.n, name, system.label.replace(" ", "_"))
        self.dir = os.path.join(bench.root, self.name)
        self.vdir = os.path.join(self.dir, "v")
        os.makedirs(self.vdir)
        self.logpath = os.path.join(self.dir, "emperor.log")
        self.proc = None

    def path(self, vname):
        return os.path.join(self.vdir, vname + self.system.ext)

    def write(self, files):
        """Writes files (name, text) in place, before the emperor starts."""
        for vname, text in files:
            with open(self.path(vname), "w") as f:
                f.write(self.named(vname, text))

    def named(self, vname, text):
        named = getattr(self.system, "named", None)
        return named(vname, text) if named else text

    def drop(self, files):
        """Drops files into the watched directory at once (write hidden, then rename);
        returns the monotonic time just before the first rename."""
        tmps = []
        for vname, text in files:
            tmp = os.path.join(self.vdir, "." + vname + ".tmp")
            with open(tmp, "w") as f:
                f.write(self.named(vname, text))
            tmps.append((tmp, self.path(vname)))
        t0 = now()
        for tmp, final in tmps:
            os.rename(tmp, final)
        return t0

    def start(self):
        env = dict(os.environ)
        env[MARK_VAR] = self.bench.mark
        env.pop("NOTIFY_SOCKET", None)
        if hasattr(self.system, "prepare"):        # a peer daemon (peers.py)
            self.system.prepare(self)
            env.update(self.system.env(self))
        self.logf = open(self.logpath, "w")
        self.proc = subprocess.Popen(self.system.argv(self.vdir, self.opts), cwd=self.dir,
                                     env=env, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.bench.live.append(self)
        if hasattr(self.system, "started") and not self.system.started(self):
            self.bench.anomaly("%s: %s did not answer its CLI" % (self.name, self.system.label),
                               self.log_text())
        return self

    @property
    def pid(self):
        return self.proc.pid

    def log_text(self):
        return read_text(self.logpath) or ""

    def stop(self, timeout=60.0):
        if self.proc is None:
            return
        if self in self.bench.live:
            self.bench.live.remove(self)
        t0 = now()
        if self.proc.poll() is None:
            self.proc.send_signal(self.system.stop_signal)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.bench.anomaly("%s: %s did not exit %.0f s after SIG%s; SIGKILL"
                                   % (self.name, self.system.label, timeout,
                                      self.system.stop_signal.name[3:]),
                                   self.log_text())
                self.proc.kill()
                self.proc.wait()
        else:
            self.bench.anomaly("%s: %s exited by itself (status %s)"
                               % (self.name, self.system.label, self.proc.returncode),
                               self.log_text())
        self.stop_seconds = now() - t0
        self.logf.close()
        if self.system.kind == "emperor":
            bad = [line for line in self.log_text().splitlines()
                   if re.search(r"emperor\[\d+\]: (warning|error)|\] .*(error|fatal)", line)]
            if bad:
                self.bench.anomaly("%s: %d warning/error lines in the emperor's log, first: %s"
                                   % (self.name, len(bad), bad[0]), "\n".join(bad[:40]))
        self.proc = None
        self.sweep()

    def sweep(self):
        """Processes still carrying the mark once the emperor is gone: reported, killed."""
        deadline = now() + 3.0
        left = marked_pids(self.bench.mark)
        while left and now() < deadline:      # a vassal may still be finishing its exit
            time.sleep(0.05)
            left = marked_pids(self.bench.mark)
        for pid in left:
            entry = {"run": self.name, "pid": pid, "cmdline": cmdline(pid)}
            self.bench.leftovers.append(entry)
            log("  LEFTOVER after %s: pid %d %s (SIGKILL)" % (self.name, pid, entry["cmdline"]))
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def cpu_busy(seconds=0.5):
    """Fraction of the machine's CPU time spent busy over `seconds` (before a workload
    starts, that is other people's work: the figures are only as quiet as the machine)."""
    def sample():
        f = (read_text("/proc/stat") or "cpu 0 0 0 0").splitlines()[0].split()[1:]
        v = list(map(int, f))
        return sum(v), v[3] + (v[4] if len(v) > 4 else 0)
    t0, i0 = sample()
    time.sleep(seconds)
    t1, i1 = sample()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def wait_all_ok(run, ports, timeout, what):
    t0 = now()
    done = Poller(ports, want_ok, poll_delay(len(ports))).run(timeout)
    if len(done) < len(ports):
        run.bench.anomaly("%s: %d of %d ports never answered 200 within %.0f s"
                          % (what, len(ports) - len(done), len(ports), timeout),
                          run.log_text())
        return None
    return max(done.values()) - t0


# ---- figures -------------------------------------------------------------------------------

class Figure:
    def __init__(self, fid, title, unit, target=None, target_text=""):
        self.id, self.title, self.unit = fid, title, unit
        self.target, self.target_text = target, target_text   # target: f(median) -> bool
        self.values = {}                                      # label -> [values]
        self.order = []

    def add(self, label, value):
        if label not in self.values:
            self.values[label] = []
            self.order.append(label)
        if value is not None:
            self.values[label].append(value)

    @staticmethod
    def stats(vals):
        if not vals:
            return None
        return {"runs": vals, "min": min(vals), "median": statistics.median(vals),
                "max": max(vals)}

    def ours(self):
        for label in self.order:
            if not label.startswith(PEER_LABELS):
                return label
        return None

    def to_json(self):
        out = {"id": self.id, "title": self.title, "unit": self.unit,
               "target": self.target_text or None, "systems": {}}
        for label in self.order:
            out["systems"][label] = self.stats(self.values[label])
        ours = self.ours()
        st = self.stats(self.values.get(ours, [])) if ours else None
        if st and self.target:
            out["target_met"] = bool(self.target(st["median"]))
        for label in self.order:
            other = self.stats(self.values[label])
            if label != ours and st and other and other["median"]:
                out.setdefault("ratio", {})[label] = st["median"] / other["median"]
        return out

    def line(self):
        parts = []
        ours = self.ours()
        ost = self.stats(self.values.get(ours, [])) if ours else None
        for label in self.order:
            st = self.stats(self.values[label])
            if st is None:
                parts.append("%s: no value" % label)
                continue
            s = "%s %s/%s/%s" % (label, fmt(st["min"]), fmt(st["median"]), fmt(st["max"]))
            if label != ours and ost and st["median"]:
                s += " (ratio %s)" % fmt(ost["median"] / st["median"])
            parts.append(s)
        verdict = ""
        if self.target and ost:
            verdict = " | target %s: %s" % (self.target_text,
                                            "met" if self.target(ost["median"]) else "MISSED")
        elif self.target_text:
            verdict = " | target %s" % self.target_text
        return "%-42s %s%s" % ("%s %s (%s)" % (self.id, self.title, self.unit),
                               " | ".join(parts), verdict)


PEER_LABELS = ("uWSGI", "supervisord", "PM2")    # the systems we are compared with


class Report:
    """The figures of the run. While an app is set (main()'s loop over apps), a
    figure id names it after the workload: W5.chain.p99_ms -> W5.python.chain.p99_ms,
    W6 -> W6.python."""

    def __init__(self):
        self.figures = {}
        self.order = []
        self.notes = []
        self.app = None

    def fid(self, fid):
        if not self.app:
            return fid
        head, dot, rest = fid.partition(".")
        return "%s.%s%s%s" % (head, self.app.name, dot, rest)

    def fig(self, fid, title, unit, target=None, target_text=""):
        fid = self.fid(fid)
        if fid not in self.figures:
            self.figures[fid] = Figure(fid, title, unit, target, target_text)
            self.order.append(fid)
        return self.figures[fid]

    def emit(self, fid):
        log(self.figures[self.fid(fid)].line())

    def ratio_fig(self, fid, title, num, den, limit, label="emperor"):
        """A figure of this run's ratio of two medians, num and den lists of values
        (ours / a peer's, taken in this run), with the target <= limit."""
        f = self.fig(fid, title, "x", lt(limit + 1e-9), "<= %g x" % limit)
        if num and den and statistics.median(den):
            f.add(label, statistics.median(num) / statistics.median(den))
        else:
            f.add(label, None)
        self.emit(fid)
        return f


def lt(x):
    return lambda v: v < x


def eq0(v):
    return v == 0


# ---- the systems as configured for each workload --------------------------------------------

OURS = Ours("emperor")
UWSGI_DEFAULT = Uwsgi("uWSGI default")                     # scans every 3 s
UWSGI_FAST = Uwsgi("uWSGI freq1", ["--emperor-freq", "1"])  # its shortest scan period
PEERS = []          # supervisord and PM2 where available (set_app())
RELOAD_CONCURRENCY = 0  # W6: the emperor's --reload-concurrency (0: its default)
PEERS_SKIPPED = {}  # peer kind -> why it is not measured


def set_app(app, rep):
    """Every system of the workloads runs `app` from now on; figure ids name it."""
    global OURS, UWSGI_DEFAULT, UWSGI_FAST, PEERS
    OURS = Ours("emperor", app=app)
    UWSGI_DEFAULT = Uwsgi("uWSGI default", app=app)
    UWSGI_FAST = Uwsgi("uWSGI freq1", ["--emperor-freq", "1"], app=app)
    PEERS = []
    for cls in (peers.Supervisord, peers.Pm2):
        if cls.kind not in PEERS_SKIPPED:
            why = cls.available()
            PEERS_SKIPPED[cls.kind] = why
            if why:
                rep.notes.append(why)
                log("bench: " + why)
        if not PEERS_SKIPPED[cls.kind]:
            PEERS.append(cls(app))
    rep.app = app


def run_cli(bench, system, proc, what, timeout=120.0):
    """Waits for a peer's CLI call; a failure is an anomaly. True if it succeeded."""
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        rc = "timeout"
    if rc != 0:
        bench.anomaly("%s %s: CLI %s" % (what, system.label, rc))
    return rc == 0


def settle_for(system):
    """Seconds to let an emperor start before dropping files (uWSGI's first scan pass
    ends its warm-up, during which adds are not throttled). A peer's Run.start has
    waited for its daemon to answer its CLI already."""
    return 1.2 if system.kind == "uwsgi" else 0.3


def scan_period(system):
    if system.kind != "uwsgi":      # this project and the peers do not poll
        return 0.0
    if "--emperor-freq" in system.extra:
        return float(system.extra[system.extra.index("--emperor-freq") + 1])
    return 3.0


# ---- W1 reaction ---------------------------------------------------------------------------

def w1(bench, rep, runs):
    log("W1 reaction: drop one vassal into a watched empty directory; until it answers 200")
    c = OURS.app.name == "c"        # the targets are the orchestrator's own cost
    f = rep.fig("W1", "reaction", "ms", lt(20) if c else None, "< 20 ms" if c else "")
    for system in [OURS, UWSGI_DEFAULT, UWSGI_FAST] + PEERS:
        for i in range(runs):
            run = Run(bench, system, "w1").start()
            # drops spread over the scan period of a polling emperor (stratified phase)
            time.sleep(settle_for(system) + (i + 0.5) / runs * scan_period(system))
            port = bench.ports(system.kind, 1)[0]
            t0 = run.drop([("v1", system.vassal_text(port))])
            cli = system.add(run, "v1") if hasattr(system, "add") else None  # a peer's CLI
            done = Poller([port], want_ok, 0.001).run(60.0)
            if cli:
                run_cli(bench, system, cli, "W1")
            if port in done:
                f.add(system.label, (done[port] - t0) * 1000.0)
            else:
                f.add(system.label, None)
                bench.anomaly("W1 %s: no answer within 30 s" % system.label, run.log_text())
            run.stop()
    rep.emit("W1")


# ---- W2 touch reload ------------------------------------------------------------------------

def w2(bench, rep, runs):
    log("W2 touch reload: touch the vassal file; until a new worker pid answers")
    c = OURS.app.name == "c"        # the targets are the orchestrator's own cost
    f = rep.fig("W2", "touch reload", "ms", lt(50) if c else None, "< 50 ms" if c else "")
    for system in [OURS, UWSGI_DEFAULT, UWSGI_FAST] + PEERS:
        port = bench.ports(system.kind, 1)[0]
        run = Run(bench, system, "w2")
        run.write([("v1", system.vassal_text(port))])
        run.start()
        if wait_all_ok(run, [port], 30.0, "W2 %s start" % system.label) is None:
            run.stop()
            continue
        path = run.path("v1")
        for i in range(runs):
            time.sleep(0.2)
            old = get_pids([port]).get(port)
            if system.kind == "uwsgi":
                # uWSGI compares whole-second mtimes: touch in a later second than the
                # last one it saw, at a phase spread over its scan period
                floor = int(os.stat(path).st_mtime) + 1
                at = floor + (i + 0.5) / runs * scan_period(system)
                time.sleep(max(0.0, at - time.time()))
            t0 = now()
            cli = system.restart(run, "v1") if hasattr(system, "restart") else os.utime(path)
            done = Poller([port], lambda p, s, pid: s == 200 and pid != old, 0.001).run(60.0)
            if cli:
                run_cli(bench, system, cli, "W2")
            if port in done:
                f.add(system.label, (done[port] - t0) * 1000.0)
            else:
                f.add(system.label, None)
                bench.anomaly("W2 %s: no new pid within 30 s" % system.label, run.log_text())
        run.stop()
    rep.emit("W2")


# ---- W3 scale ------------------------------------------------------------------------------

def tree_memory(root_pid):
    """Emperor, masters (its children), workers (theirs): VmRSS and Pss in KiB."""
    kids = children_map()
    masters = kids.get(root_pid, [])
    tree = [root_pid] + descendants(root_pid, kids)
    return {
        "emperor_rss": rss_kib(root_pid),
        "master_rss": [rss_kib(p) for p in masters],
        "master_pss": [pss_kib(p) for p in masters],
        "emperor_anon": anon_kib(root_pid),
        "master_anon": [anon_kib(p) for p in masters],
        "total_rss": sum(rss_kib(p) for p in tree),
        "total_pss": sum(pss_kib(p) for p in tree),
        "cpu_ns": sum(proc_cpu_ns(p) or 0 for p in tree),
        "processes": len(tree),
    }


# W3 at 10,000 (--scale): its targets (issue 19), and what it needs of the host.
SCALE_N = 10000
SCALE_TASKS_PER_VASSAL = 3   # a master, a hello-worker and its acceptor thread
MAX_HOST_PROCS = 50000


def start_idle_processes(n, mark):
    """n unrelated idle processes (sleep), for W3 with a crowded /proc: bounded, stopped
    by pid by stop_idle_processes(). They carry IDLE_VAR, not the run's mark (a run's
    sweep would take them for its leftovers); bench/run's last sweep knows both."""
    n = min(n, MAX_HOST_PROCS)
    env = dict(os.environ)
    env.pop(MARK_VAR, None)
    env[IDLE_VAR] = mark
    pids = []
    try:
        for _ in range(n):
            pids.append(os.posix_spawnp("sleep", ["sleep", "100000"], env))
    except OSError as e:
        log("  could start only %d idle processes: %s" % (len(pids), e))
    return pids


def stop_idle_processes(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in pids:
        os.waitpid(pid, 0)


def scale_fits(bench, n, idle):
    """10,000 vassals are 30,000 tasks: pid_max and the descriptor limit must allow it."""
    pid_max = int((read_text("/proc/sys/kernel/pid_max") or "32768").strip())
    need = len(all_pids()) + SCALE_TASKS_PER_VASSAL * n + idle + 1000
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if need > pid_max:
        bench.anomaly("W3 %d%s skipped: it needs ~%d pids, kernel.pid_max is %d "
                      "(sysctl -w kernel.pid_max=4194304)"
                      % (n, " with %d idle processes" % idle if idle else "", need, pid_max))
        return False
    if nofile < 2 * n + 1000:
        bench.anomaly("W3 %d skipped: the emperor needs ~%d descriptors, the hard limit is "
                      "%d (ulimit -Hn)" % (n, 2 * n + 1000, nofile))
        return False
    return True


def w3(bench, rep, sizes, runs_for, uwsgi_sizes, idle_procs=0):
    log("W3 scale: N vassals of one worker dropped at once; until all answer 200; memory")
    runs = [(n, 0) for n in sizes] + ([(SCALE_N, idle_procs)] if idle_procs and SCALE_N in sizes
                                      else [])
    for n, idle in runs:
        key = "%d" % n if not idle else "%d_idle%d" % (n, idle)
        label = "%d" % n if not idle else "%d (+%d idle processes)" % (n, idle)
        targets = {100: None, 500: 3.0, 1000: 8.0, SCALE_N: 30.0}
        tgt = targets.get(n) if OURS.app.name == "c" else None   # the Python app: a ratio
        mem_tgt = 24 if n >= SCALE_N else 4
        ft = rep.fig("W3.%s.time" % key, "%s vassals all answer" % label, "s",
                     lt(tgt) if tgt else None, "< %g s" % tgt if tgt else "")
        fc = rep.fig("W3.%s.cpu" % key, "%s: CPU time of the tree to start them" % label, "s")
        fs = rep.fig("W3.%s.stop" % key, "%s: SIGTERM (uWSGI: SIGINT) until the emperor exits"
                     % label, "s", lt(15.0) if n >= SCALE_N else None,
                     "<= 15 s" if n >= SCALE_N else "")
        fe = rep.fig("W3.%s.emperor_rss" % key, "%s: emperor VmRSS" % label, "MiB",
                     lt(mem_tgt), "< %d MiB" % mem_tgt)
        fm = rep.fig("W3.%s.master_rss" % key, "%s: master VmRSS, median" % label, "MiB", lt(2),
                     "< 2 MiB")
        fmp = rep.fig("W3.%s.master_pss" % key, "%s: master Pss, median" % label, "KiB",
                      lambda v: v <= 400, "<= 400 KiB")
        fea = rep.fig("W3.%s.emperor_anon" % key, "%s: emperor RssAnon" % label, "MiB")
        fma = rep.fig("W3.%s.master_anon" % key, "%s: master RssAnon, median" % label, "MiB")
        fr = rep.fig("W3.%s.total_rss" % key, "%s: tree VmRSS sum" % label, "MiB")
        fp = rep.fig("W3.%s.total_pss" % key, "%s: tree Pss sum" % label, "MiB")
        systems = [OURS] + ([UWSGI_FAST] if n in uwsgi_sizes else [])
        if n >= SCALE_N and not scale_fits(bench, n, idle):
            systems = []
        for system in systems:
            for _ in range(runs_for(n, system)):
                idle_pids = start_idle_processes(idle, bench.mark) if idle else []
                if idle:
                    rep.notes.append("W3 %s: %d idle processes started; load %s"
                                     % (label, len(idle_pids), read_text("/proc/loadavg")))
                try:
                    w3_run(bench, system, n, label, rep, (ft, fc, fs, fe, fm, fmp, fea, fma,
                                                          fr, fp))
                finally:
                    stop_idle_processes(idle_pids)
        for fid in ("time", "cpu", "stop", "emperor_rss", "master_rss", "master_pss",
                    "emperor_anon", "master_anon", "total_rss", "total_pss"):
            rep.emit("W3.%s.%s" % (key, fid))
        if OURS.app.name != "c" and n in uwsgi_sizes:
            rep.ratio_fig("W3.%s.time_vs_uwsgi" % key, "%s all answer, ours / uWSGI's" % label,
                          ft.values.get(OURS.label), ft.values.get(UWSGI_FAST.label), 0.7)


def w3_run(bench, system, n, label, rep, figs):
    ft, fc, fs, fe, fm, fmp, fea, fma, fr, fp = figs
    run = Run(bench, system, "w3-%d" % n).start()
    time.sleep(settle_for(system))
    wide = n > PORTS_EMPEROR[1] - PORTS_EMPEROR[0]  # 10,000 ports: both systems' ranges
    if wide:
        bench.port_end[system.kind] = PORTS_UWSGI[1]
    ports = bench.ports(system.kind, n)
    if wide:
        bench.port_end[system.kind] = PORTS_EMPEROR[1]
        bench.next_port[system.kind] = PORTS_EMPEROR[0]
    files = [("v%05d" % i, system.vassal_text(p)) for i, p in enumerate(ports)]
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    emperor_cpu0 = proc_cpu_ns(run.pid) or 0
    load0 = (read_text("/proc/loadavg") or "").strip()
    t0 = run.drop(files)
    # at most ~10,000 attempts per second in all: 1 s apart per port at 10,000
    poller = Poller(ports, want_ok, max(poll_delay(n), n / 10000.0))
    done = poller.run(60.0 + n * 0.5)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    if len(done) < n:
        bench.anomaly("W3 %s %s: %d ports never answered"
                      % (system.label, label, n - len(done)), run.log_text())
        ft.add(system.label, None)
    else:
        elapsed = max(done.values()) - t0
        ft.add(system.label, elapsed)
        rep.notes.append("W3 %s %s: poller %d attempts, %.2f s CPU over %.2f s; load before %s"
                         % (system.label, label, poller.attempts,
                            (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime),
                            elapsed, load0))
    time.sleep(1.0)
    mem = tree_memory(run.pid)
    fe.add(system.label, mem["emperor_rss"] / 1024.0)
    if mem["master_rss"]:
        fm.add(system.label, statistics.median(mem["master_rss"]) / 1024.0)
        fmp.add(system.label, statistics.median(mem["master_pss"]))
    fea.add(system.label, mem["emperor_anon"] / 1024.0)
    if mem["master_anon"]:
        fma.add(system.label, statistics.median(mem["master_anon"]) / 1024.0)
    fr.add(system.label, mem["total_rss"] / 1024.0)
    fp.add(system.label, mem["total_pss"] / 1024.0)
    # the whole tree's CPU time (the emperor's since the drop): the work it took,
    # whatever else the machine was doing meanwhile
    fc.add(system.label, (mem["cpu_ns"] - emperor_cpu0) / 1e9)
    run.stop(timeout=120.0)
    fs.add(system.label, run.stop_seconds)
    rep.notes.append("W3 %s %s: %d processes; stop took %.1f s"
                     % (system.label, label, mem["processes"], run.stop_seconds))
    if mem["processes"] != 2 * n + 1:
        bench.anomaly("W3 %s %s: %d processes in the tree, expected %d"
                      % (system.label, label, mem["processes"], 2 * n + 1))


# ---- W4 idle cost ---------------------------------------------------------------------------

def sample_idle(root_pid):
    kids = children_map()
    masters = kids.get(root_pid, [])
    workers = [w for m in masters for w in descendants(m, kids)]
    out = {}
    for role, pids in (("emperor", [root_pid]), ("masters", masters), ("workers", workers)):
        cpu = vol = invol = 0
        for pid in pids:
            ns, sw = proc_cpu_ns(pid), proc_switches(pid)
            if ns is not None and sw:
                cpu += ns
                vol += sw[0]
                invol += sw[1]
        out[role] = {"pids": sorted(pids), "cpu": cpu, "vol": vol, "invol": invol}
    return out


def w4(bench, rep, n, seconds):
    log("W4 idle cost: %d idle vassals for %d s; CPU and voluntary context switches" %
        (n, seconds))
    figs = {}
    for role in ("emperor", "masters", "workers"):
        figs[role] = (
            rep.fig("W4.%s.cpu" % role, "%s CPU" % role, "ms/s"),
            rep.fig("W4.%s.wakeups" % role, "%s wake-ups" % role, "1/s",
                    eq0 if role != "workers" else None, "0 /s" if role != "workers" else ""))
    for system in (OURS, UWSGI_DEFAULT):
        ports = bench.ports(system.kind, n)
        run = Run(bench, system, "w4")
        run.write([("v%04d" % i, system.vassal_text(p)) for i, p in enumerate(ports)])
        run.start()
        if wait_all_ok(run, ports, 120.0, "W4 %s start" % system.label) is None:
            run.stop()
            continue
        time.sleep(3.0)
        a = sample_idle(run.pid)
        t0 = now()
        time.sleep(seconds)
        b = sample_idle(run.pid)
        dt = now() - t0
        for role in ("emperor", "masters", "workers"):
            if a[role]["pids"] != b[role]["pids"]:
                bench.anomaly("W4 %s: the %s changed while idle" % (system.label, role),
                              run.log_text())
            cpu = (b[role]["cpu"] - a[role]["cpu"]) / 1e6 / dt
            wake = (b[role]["vol"] - a[role]["vol"]) / dt
            figs[role][0].add(system.label, cpu)
            figs[role][1].add(system.label, wake)
        run.stop(timeout=120.0)
    for role in ("emperor", "masters", "workers"):
        rep.emit("W4.%s.cpu" % role)
        rep.emit("W4.%s.wakeups" % role)


# ---- W5 zero downtime -----------------------------------------------------------------------

def parse_wrk(text):
    def dur(s):
        m = re.match(r"([\d.]+)(us|ms|s|m)$", s)
        if not m:
            return None
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]
    out = {"requests_per_s": None, "socket_errors": 0, "non2xx": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        out["requests_per_s"] = float(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        out["errors_detail"] = dict(zip(("connect", "read", "write", "timeout"),
                                        map(int, m.groups())))
        out["socket_errors"] = sum(map(int, m.groups()))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        out["non2xx"] = int(m.group(1))
    m = re.search(r"^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)", text, re.M)
    if m:
        out["latency_max_ms"] = dur(m.group(3))
    for pct in ("50", "99"):
        m = re.search(r"^\s+%s%%\s+(\S+)" % pct, text, re.M)
        if m:
            out["p%s_ms" % pct] = dur(m.group(1))
    m = re.search(r"(\d+) requests in", text)
    if m:
        out["requests"] = int(m.group(1))
    return out


def uwsgi_fifo_write(path, byte):
    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(fd, byte)
    finally:
        os.close(fd)


W5_MODES = ("baseline", "graceful", "chain", "overlap")


def w5_actions(system):
    """W5 row -> what is done to the system in it: reload modes of our vassal file,
    uWSGI's touch or chain FIFO, a peer's CLI (peers.py: w5_rows); a row a system
    cannot do is left out (its cell is "–")."""
    if system.kind == "emperor":
        return {m: m for m in W5_MODES}
    if system.kind == "uwsgi":
        return {"baseline": "baseline", "graceful": "graceful", "chain": "chain"}
    out = {"baseline": "baseline"}
    out.update(system.w5_rows)
    return out


def w5_trigger(bench, system, run, action, fifo, cli):
    """One reload; for a peer, its CLI call (the previous one is waited for first:
    a restart can take longer than the period). Returns (cli, ok of the previous)."""
    ok = None
    if cli is not None:
        ok = run_cli(bench, system, cli, "W5 %s" % action)
    if system.kind == "uwsgi" and action == "chain":
        uwsgi_fifo_write(fifo, b"c")
        return None, ok
    if system.kind in ("emperor", "uwsgi"):
        os.utime(run.path("v1"))
        return None, ok
    return getattr(system, action)(run, "v1"), ok


def w5_one(bench, rep, system, action, seconds, every):
    """One run of W5: start, wrk for `seconds`, a reload every `every` s but in the
    baseline; returns wrk's figures and the reloads done, or None."""
    port = bench.ports(system.kind, 1)[0]
    run = Run(bench, system, "w5-%s" % action)
    fifo = os.path.join(run.dir, "master.fifo")
    mode = action if action in ("graceful", "chain", "overlap") else "graceful"
    run.write([("v1", system.vassal_text(port, workers=4, reload=mode, aux=fifo,
                                         keepalive=True))])
    run.start()
    if wait_all_ok(run, [port], 120.0, "W5 %s start" % system.label) is None:
        run.stop()
        return None
    time.sleep(1.0)
    log_before = len(run.log_text())
    wrk = subprocess.Popen(["wrk", "-t2", "-c32", "-d%ds" % seconds, "--timeout", "10s",
                            "--latency", "http://%s:%d/" % (HOST, port)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t0 = now()
    triggers, cli_ok = 0, 0
    cli = None
    if action != "baseline":
        at = t0 + every / 2
        while at < t0 + seconds - every / 2:
            time.sleep(max(0.0, at - now()))
            cli, ok = w5_trigger(bench, system, run, action, fifo, cli)
            cli_ok += bool(ok)
            triggers += 1
            at = max(at + every, now())
    out, _ = wrk.communicate(timeout=seconds + 120)
    if cli is not None:
        cli_ok += run_cli(bench, system, cli, "W5 %s" % action)
    time.sleep(1.5)
    res = parse_wrk(out)
    done = system.reloads_in_log(run.log_text()[log_before:])
    res["reloads"] = cli_ok if done is None else done
    res["triggers"] = triggers
    res["wrk_output"] = out
    if action != "baseline" and res["reloads"] < triggers:
        rep.notes.append("W5 %s %s %s: %d reloads done for %d triggers"
                         % (system.app.name, system.label, action, res["reloads"], triggers))
    run.stop()
    return res


def w5(bench, rep, seconds, every):
    log("W5 zero downtime: 4 workers under wrk -t2 -c32 -d%ds --timeout 10s --latency "
        "(keep-alive), reloaded every %g s; app %s" % (seconds, every, OURS.app.name))
    metrics = (("requests_per_s", "requests/s", "1/s", None, ""),
               ("socket_errors", "socket errors", "count", eq0, "0"),
               ("non2xx", "non-2xx", "count", eq0, "0"),
               ("p50_ms", "p50 latency", "ms", None, ""),
               ("p99_ms", "p99 latency", "ms", None, ""),
               ("latency_max_ms", "max latency", "ms", None, ""),
               ("reloads", "reloads done", "count", None, ""))
    systems = [OURS, UWSGI_FAST] + PEERS
    results = {}      # (label, row) -> wrk's figures
    for system in systems:
        for row, action in w5_actions(system).items():
            res = w5_one(bench, rep, system, action, seconds, every)
            if res is not None:
                res["action"] = action
                results[(system.label, row)] = res
    python = OURS.app.name != "c"
    for row in W5_MODES:
        for key, title, unit, target, ttext in metrics:
            if row == "baseline" and key == "reloads":
                continue
            if row == "graceful" and key == "p99_ms" and not python:
                target, ttext = lt(20), "< 20 ms"
            fid = "W5.%s.%s" % (row, key)
            f = rep.fig(fid, "%s: %s" % (row, title), unit, target, ttext)
            for system in systems:
                res = results.get((system.label, row))
                f.add(system.label, res.get(key) if res else None)
            rep.emit(fid)
    w5_vs_baseline(rep, systems, results, python)
    return ({"%s/%s" % k: {kk: vv for kk, vv in v.items() if kk != "wrk_output"}
             for k, v in results.items()},
            {"%s/%s" % k: v["wrk_output"] for k, v in results.items()})


def w5_vs_baseline(rep, systems, results, python):
    """Each system's reload rows against its own baseline; the issue's targets (C:
    chain p99 <= 1.1x, max <= 2x; Python: chain p99 <= 2x and <= uWSGI's chain ratio,
    overlap p99 <= 1.5x, max <= 3x)."""
    limits = {("chain", "p99_ms"): 2.0 if python else 1.1,
              ("chain", "latency_max_ms"): None if python else 2.0,
              ("overlap", "p99_ms"): 1.5, ("overlap", "latency_max_ms"): 3.0}
    ratios = {}
    for (row, key), limit in limits.items():
        fid = "W5.%s.%s_vs_baseline" % (row, key.split("_")[0])
        name = "p99" if key == "p99_ms" else "max"
        f = rep.fig(fid, "%s %s / baseline %s" % (row, name, name), "x",
                    lt(limit + 1e-9) if limit else None, "<= %g x" % limit if limit else "")
        for system in systems:
            c, b = results.get((system.label, row)), results.get((system.label, "baseline"))
            v = c[key] / b[key] if c and b and c.get(key) and b.get(key) else None
            if c and not c.get("reloads"):
                # no reload finished while wrk ran: the latencies show none, no ratio
                v = None
                note = ("W5 %s %s %s: no reload finished during wrk, so no ratio to the "
                        "baseline" % (OURS.app.name, system.label, row))
                if note not in rep.notes:
                    rep.notes.append(note)
            f.add(system.label, v)
            ratios[(system.label, row, key)] = v
        rep.emit(fid)
    if python:
        ours = ratios.get((OURS.label, "chain", "p99_ms"))
        theirs = ratios.get((UWSGI_FAST.label, "chain", "p99_ms"))
        rep.ratio_fig("W5.chain.p99_ratio_vs_uwsgi",
                      "chain p99/baseline p99, ours / uWSGI's", [ours] if ours else [],
                      [theirs] if theirs else [], 1.0)


# ---- W6 full reload -------------------------------------------------------------------------

def w6(bench, rep, n, runs):
    log("W6 full reload: %d vassals, SIGHUP to the emperor; until every vassal answers "
        "from a new worker" % n)
    python = OURS.app.name != "c"
    f = rep.fig("W6", "SIGHUP reload of %d vassals" % n, "ms", None if python else lt(500),
                "" if python else "< 500 ms")
    ours = ["--reload-concurrency", str(RELOAD_CONCURRENCY)] if RELOAD_CONCURRENCY else []
    for system, opts in ((OURS, ours), (UWSGI_DEFAULT, [])):  # ours: its default window
        ports = bench.ports(system.kind, n)
        run = Run(bench, system, "w6", opts)
        run.write([("v%04d" % i, system.vassal_text(p)) for i, p in enumerate(ports)])
        run.start()
        if wait_all_ok(run, ports, 120.0, "W6 %s start" % system.label) is None:
            run.stop()
            continue
        for _ in range(runs):
            time.sleep(1.0)
            old = get_pids(ports)
            if len(old) < n:
                bench.anomaly("W6 %s: %d ports did not answer before SIGHUP"
                              % (system.label, n - len(old)), run.log_text())
                break
            t0 = now()
            os.kill(run.pid, signal.SIGHUP)
            # the Python app: each port every 100 ms (W14's RELOAD_POLL and its reason:
            # at ~5,000 polls a second the Python servers' answers took a core)
            delay = 0.1 if python else max(0.005, poll_delay(n))
            done = Poller(ports, lambda p, s, pid: s == 200 and pid != old[p],
                          delay).run(120.0)
            if len(done) < n:
                bench.anomaly("W6 %s: %d vassals not reloaded within 120 s"
                              % (system.label, n - len(done)), run.log_text())
                f.add(system.label, None)
            else:
                f.add(system.label, (max(done.values()) - t0) * 1000.0)
        run.stop(timeout=120.0)
    rep.emit("W6")
    if python:
        rep.ratio_fig("W6.vs_uwsgi", "SIGHUP reload, ours / uWSGI's", f.values.get(OURS.label),
                      f.values.get(UWSGI_DEFAULT.label), 0.5)


# ---- the run --------------------------------------------------------------------------------

def machine():
    mem = 0
    for line in (read_text("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1])
    model = ""
    for line in (read_text("/proc/cpuinfo") or "").splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break

    def ver(argv):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (out.stdout + out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return None
    return {"nproc": os.cpu_count(), "memory_kib": mem, "kernel": platform.release(),
            "cpu": model, "debian": (read_text("/etc/debian_version") or "").strip(),
            "uwsgi": ver(["uwsgi", "--version"]), "wrk": ver(["wrk", "-v"]),
            "supervisord": ver(["supervisord", "--version"]), "pm2": peers.pm2_version(),
            "node": ver(["node", "--version"]),
            "python": platform.python_version()}


def binaries():
    """sha256 of the binaries under test: the tree may hold uncommitted work."""
    import hashlib
    out = {}
    for name in ("emperor", "vassal", "hello-worker"):
        with open(os.path.join(BIN, name), "rb") as f:
            out[name] = hashlib.sha256(f.read()).hexdigest()[:16]
    return out


def commit():
    def git(*args):
        return subprocess.run(["git", "-C", REPO] + list(args), capture_output=True,
                              text=True).stdout.strip()
    head = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--", "emperor", "vassal", "lib", "include",
                     "examples"))
    return {"commit": head, "product_sources_dirty": dirty}


def run_app(bench, rep, app, args, only, extra):
    """W1..W6 with one app (apps.py); the Python app's sizes are smaller where each
    process costs its start (W3: 100 quick, 500 full). Before and after each workload
    the machine's load is recorded (details.load, details.busy_before)."""
    quick, py = args.quick, app.name != "c"

    def measured(w, fn, *a):
        if w not in only:
            return None
        wid = rep.fid(w)
        b = cpu_busy()
        extra["busy_before"][wid] = round(b, 3)
        if b > 0.10:
            rep.notes.append("%s: the machine was %.0f%% busy with other work before it started"
                             % (wid, b * 100))
        load = {"start": (read_text("/proc/loadavg") or "").strip(), "busy_before": round(b, 3)}
        extra["load"][wid] = load
        t0 = now()
        try:
            return fn(*a)
        finally:
            load["end"] = (read_text("/proc/loadavg") or "").strip()
            load["seconds"] = round(now() - t0, 1)
    measured("W1", w1, bench, rep, 2 if quick else (3 if py else 5))
    measured("W2", w2, bench, rep, 2 if quick else (3 if py else 5))
    if py:
        sizes = [100] if quick else [500]
        uwsgi_sizes = set(sizes)
    else:
        sizes = ([100, 500] if quick else [100, 500, 1000]) + ([SCALE_N] if args.scale else [])
        # --quick: uWSGI at 100 only (500 uWSGI vassals take 12 s quiet, minutes loaded)
        uwsgi_sizes = {100} if quick else ({100, 500, 1000} if args.full else {100, 500})

    def runs_for(n, system):
        if system.kind == "uwsgi" or quick or py:
            return 1
        return 3 if n <= 500 else 1
    measured("W3", w3, bench, rep, sizes, runs_for, uwsgi_sizes, 0 if py else args.host_procs)
    measured("W4", w4, bench, rep, 20 if quick and py else 100, 5 if quick else (15 if py else 30))
    res = measured("W5", w5, bench, rep, (7 if py else 5) if quick else 15,
                   2.0 if quick or not py else 2.5)
    if res:
        extra[rep.fid("W5")], extra[rep.fid("W5") + "_wrk_output"] = res
    measured("W6", w6, bench, rep, 50, 1 if quick and py else (2 if quick or py else 3))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mark", required=True, help="tag put in the environment of every "
                    "process started, to find leftovers")
    ap.add_argument("--only", default="W1,W2,W3,W4,W5,W6,W7,W8,W9,W10,W11,W12,W13,W14")
    ap.add_argument("--quick", action="store_true", help="fewer runs, shorter durations")
    ap.add_argument("--full", action="store_true", help="1,000 vassals for uWSGI too, more runs")
    ap.add_argument("--scale", action="store_true", help="W3 with 10,000 vassals too")
    ap.add_argument("--host-procs", type=int, default=0, metavar="N", help="with --scale: "
                    "10,000 vassals once more beside N idle processes (e.g. 20000)")
    ap.add_argument("--reload-concurrency", type=int, default=0, metavar="N",
                    help="W6 and W14.reload: run the emperor with --reload-concurrency N "
                    "(default: its own)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary root and logs")
    ap.add_argument("--no-save", action="store_true", help="do not append to results.jsonl")
    ap.add_argument("--app", choices=("c", "python", "both"), default="both",
                    help="the worker: C reference worker, the Python app, or both in turn")
    args = ap.parse_args()
    # Ctrl-C or SIGTERM: stop what runs and record what was measured. SIGINT is
    # re-armed because a shell starts background jobs with it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    global RELOAD_CONCURRENCY
    RELOAD_CONCURRENCY = args.reload_concurrency
    only = set(args.only.upper().split(","))
    quick = args.quick

    bench = Bench(args.mark, args.keep)
    bench.snapshot()
    bins = binaries()
    rep = Report()
    started = now()
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    log("bench: temporary root %s; emperor ports %d-%d, uWSGI ports %d-%d"
        % (bench.root, PORTS_EMPEROR[0], PORTS_EMPEROR[1] - 1, PORTS_UWSGI[0], PORTS_UWSGI[1] - 1))
    extra = {"busy_before": {}, "loadavg_start": (read_text("/proc/loadavg") or "").strip(),
             "load": {}, "apps": {a.name: a.title for a in apps_mod.selected(args.app)}}
    peers.MARK_ENV = {MARK_VAR: args.mark}

    rep.notes.append("peers: supervisord and PM2 are measured in W1, W2 and W5 only; in W5 "
                     "uWSGI has no overlap reload, supervisord can only restart (its figures "
                     "are in the graceful row) and PM2's reload is rolling (in the chain "
                     "row); \"–\" marks what a system cannot do")
    try:
        for app in apps_mod.selected(args.app):
            log("bench: ---- app %s: %s ----" % (app.name, app.title))
            set_app(app, rep)
            run_app(bench, rep, app, args, only, extra)
        # W7..W13 run the C worker (the orchestrator's own cost), W14 the Python app;
        # their ids name no app.
        set_app(apps_mod.C, rep)
        rep.app = None

        def busy(w):
            b = cpu_busy()
            extra["busy_before"][w] = round(b, 3)
            if b > 0.10:
                rep.notes.append("%s: the machine was %.0f%% busy with other work before it "
                                 "started" % (w, b * 100))
            return True
        def w14():
            import preforked  # bench/preforked.py: 4 Python workers per vassal (issue 19)
            extra["load"].update(preforked.w14(bench, rep, quick))

        def w13():
            import scale   # bench/scale.py: issue 17's workers scaling
            scale.w13(bench, rep, quick)

        def w11():
            import demand  # bench/demand.py: issue 17's on-demand vassals
            demand.w11(bench, rep, 3 if quick else 10)

        def w12():
            import demand
            demand.w12(bench, rep, 1000)

        def w7_w8():
            import cluster  # the etcd workloads (issue 15)
            extra.update(cluster.run(sys.modules[__name__], bench, rep, only, quick, busy))

        def w9_w10():
            import legion  # issue 16: legion handovers (bench/legion.py)
            legion.workloads({"bench": bench, "bin": BIN, "mark_var": MARK_VAR,
                              "mark": args.mark}, rep, only, 3 if quick else 20, log)
        # Each in turn; one that breaks is an anomaly with its traceback, and the others
        # still run and the figures already taken are still recorded.
        for names, fn in (({"W14"}, w14), ({"W13"}, w13), ({"W11"}, w11), ({"W12"}, w12),
                          ({"W7", "W8"}, w7_w8), ({"W9", "W10"}, w9_w10)):
            if not only & names:
                continue
            if len(names) == 1:
                busy(next(iter(names)))
            elif fn is w9_w10:
                busy("W9/W10")
            try:
                fn()
            except Exception:
                bench.anomaly("%s failed" % "/".join(sorted(names)), traceback.format_exc())
    except KeyboardInterrupt:
        log("bench: interrupted")
        bench.anomaly("interrupted by the user")
    finally:
        bench.cleanup()
    duration = now() - started
    extra["loadavg_end"] = (read_text("/proc/loadavg") or "").strip()
    record = {"date": date, "machine": machine(), **commit(), "binaries": bins,
              "duration_s": round(duration, 1), "quick": quick, "only": sorted(only),
              "app": args.app, "peers_skipped": {k: v for k, v in PEERS_SKIPPED.items() if v},
              "figures": [rep.figures[fid].to_json() for fid in rep.order],
              "details": extra, "notes": rep.notes, "anomalies": bench.anomalies,
              "leftovers": bench.leftovers}
    for note in rep.notes:
        log("note: " + note)
    log("bench: %d figures in %.0f s (%d min %02d s in all); %d anomalies; %d leftover "
        "processes" % (len(rep.order), duration, duration // 60, duration % 60,
                       len(bench.anomalies), len(bench.leftovers)))
    if bench.anomalies:
        log("bench: logs kept in %s" % bench.root)
    if not args.no_save:
        os.makedirs(RESULTS, exist_ok=True)
        with open(os.path.join(RESULTS, "results.jsonl"), "a") as out:
            out.write(json.dumps(record, sort_keys=False) + "\n")
        log("bench: appended to bench/results/results.jsonl")
    return 1 if bench.leftovers else 0


if __name__ == "__main__":
    sys.exit(main())
