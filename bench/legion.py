"""legion.py — W9 and W10 of issue 16: a legion's handover, three members on loopback,
for the emperor's legions (vassal masters on etcd), uWSGI's Legion (its UDP protocol)
and `etcdctl lock NAME CMD` (the nearest etcd tool), side by side.

Each member runs a lord-only daemon (bench root's daemon.sh) that appends
"start|stop WALLTIME NODE PID" to one record; a daemon gone without its "stop" line
(SIGKILLed, or orphaned and killed by the bench) ends when the bench saw it gone.
W9: a graceful reload of the lord (SIGHUP; etcdctl: SIGTERM to its group, then started
again) → the next lord's daemon started, from the old lord's daemon stopped.
W10: SIGKILL of the lord's master (etcdctl: of the etcdctl process) → the next lord's
daemon started. Overlap: the time two daemons ran at once over the whole workload. A
daemon still running after its master was SIGKILLed is orphaned: the bench kills it by
pid once the next lord's daemon runs, and counts it.

The emperor: valors 1, 2, 3, ttl 3 s. uWSGI: valors 1, 2, 3, --legion-freq 1
--legion-tolerance 3 (its defaults, 3 s and 15 s, gave 7.8 s and 20 s in the issue's
measurement), quorum 2. etcdctl: lock --ttl 3, no valor (the lock goes to the next
waiter: the bench acts on whoever holds it). One etcd on loopback ports of the
emperor's range, a temporary data dir, stopped by pid. Stdlib only."""
import os
import signal
import subprocess
import time

TTL = 3
SECRET = "aes-128-cbc:benchsecret"
DAEMON = """trap 'echo "stop $(date +%s.%N) $NODE $$" >> "$RECORD"; exit 0' TERM INT
echo "start $(date +%s.%N) $NODE $$" >> "$RECORD"
while :; do sleep 0.02; done
"""


def wall():
    return time.time()


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class Record:
    """The daemons' start/stop lines as runs {node, pid, start, stop}."""

    def __init__(self, path):
        self.path = path
        self.seen_dead = {}   # pid -> wall time the bench saw it gone without a "stop"
        open(path, "w").close()

    def runs(self):
        runs, by_pid = [], {}
        with open(self.path) as f:
            for line in f:
                p = line.split()
                if len(p) < 4:
                    continue
                kind, t, node, pid = p[0], float(p[1]), p[2], int(p[3])
                if kind == "start":
                    r = {"node": node, "pid": pid, "start": t, "stop": None}
                    runs.append(r)
                    by_pid[pid] = r
                elif kind == "stop" and pid in by_pid:
                    by_pid[pid]["stop"] = t
        for r in runs:
            if r["stop"] is None and not alive(r["pid"]):
                r["stop"] = self.seen_dead.setdefault(r["pid"], wall())
        return runs

    def open_runs(self):
        return [r for r in self.runs() if r["stop"] is None]

    def overlap(self):
        """Seconds during which two or more daemons ran at once."""
        edges = []
        for r in self.runs():
            edges.append((r["start"], 1))
            edges.append((r["stop"] if r["stop"] is not None else wall(), -1))
        edges.sort()
        total, depth, since = 0.0, 0, None
        for t, d in edges:
            if depth >= 2 and since is not None:
                total += t - since
            depth += d
            since = t
        return total


class Member:
    """One member: a process (group) of one of the three systems."""

    def __init__(self, legion, node, valor):
        self.legion, self.node, self.valor = legion, node, valor
        self.proc = None

    def start(self):
        lg = self.legion
        env = dict(os.environ, NODE=self.node, RECORD=lg.record.path)
        env[lg.ctx["mark_var"]] = lg.ctx["mark"]
        env.pop("NOTIFY_SOCKET", None)
        self.logf = open(os.path.join(lg.dir, self.node + ".log"), "a")
        self.proc = subprocess.Popen(lg.argv(self), cwd=lg.dir, env=env,
                                     stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self, sig):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.logf.close()


class Legion:
    """Three members of one system on one record; `kind` is ours, uwsgi or etcdctl."""

    def __init__(self, ctx, kind, label, etcd_url):
        self.ctx, self.kind, self.label, self.etcd_url = ctx, kind, label, etcd_url
        bench = ctx["bench"]
        bench.n += 1
        self.dir = os.path.join(bench.root, "%02d-legion-%s" % (bench.n, kind))
        os.makedirs(self.dir)
        self.daemon = os.path.join(self.dir, "daemon.sh")
        with open(self.daemon, "w") as f:
            f.write(DAEMON)
        self.record = Record(os.path.join(self.dir, "record"))
        self.members = [Member(self, "n%d" % (i + 1), i + 1) for i in range(3)]
        # uWSGI: three UDP ports for the legion, three TCP ports for its http-socket
        self.udp = bench.ports("uwsgi", 6) if kind == "uwsgi" else []
        self.prefix = "/bench-%d" % bench.n
        self.orphans = 0

    def argv(self, m):
        i = self.members.index(m)
        if self.kind == "ours":
            cfg = os.path.join(self.dir, m.node + ".yaml")
            with open(cfg, "w") as f:
                f.write("legions: [{name: billing, valor: %d, ttl: %ds, etcd: [%s]}]\n"
                        "daemons:\n  - name: invoicer\n    exec: [sh, %s]\n"
                        "    legion: billing\n    stop-mercy: 3s\n"
                        % (m.valor, TTL, self.etcd_url, self.daemon))
            return [os.path.join(self.ctx["bin"], "vassal"), cfg]
        if self.kind == "uwsgi":
            argv = ["uwsgi", "--master", "--processes", "1",
                    "--http-socket", "127.0.0.1:%d" % self.udp[3 + i],
                    "--legion", "billing 127.0.0.1:%d %d %s" % (self.udp[i], m.valor, SECRET),
                    "--legion-freq", "1", "--legion-tolerance", str(TTL),
                    "--legion-quorum", "billing 2",
                    "--legion-attach-daemon", "billing sh %s" % self.daemon]
            for k in range(3):
                if k != i:
                    argv += ["--legion-node", "billing 127.0.0.1:%d" % self.udp[k]]
            return argv
        return ["etcdctl", "--endpoints=" + self.etcd_url, "lock", "--ttl=%d" % TTL,
                self.prefix + "/billing", "sh", self.daemon]

    def start(self):
        for m in self.members:
            m.start()

    def stop(self):
        sig = {"ours": signal.SIGTERM, "uwsgi": signal.SIGINT, "etcdctl": signal.SIGTERM}[self.kind]
        for m in self.members:
            if m.proc is not None and self.kind == "etcdctl":
                try:
                    os.killpg(m.proc.pid, sig)
                except ProcessLookupError:
                    pass
            m.stop(sig)
        self.kill_orphans()

    def kill_orphans(self):
        """Daemons still running whose member is gone (uWSGI, etcdctl after a SIGKILL)."""
        live = {m.node for m in self.members if m.proc is not None and m.proc.poll() is None}
        for r in self.record.open_runs():
            if r["node"] not in live:
                try:
                    os.kill(r["pid"], signal.SIGKILL)
                    self.orphans += 1
                except ProcessLookupError:
                    pass
                self.record.seen_dead[r["pid"]] = wall()

    def lord(self):
        """The member whose daemon is the one open run (None unless exactly one)."""
        runs = self.record.open_runs()
        if len(runs) != 1:
            return None
        return next(m for m in self.members if m.node == runs[0]["node"])

    def wait_settled(self, timeout=40.0):
        """One lord, the expected one (valor systems: n3), all members up, for 0.5 s."""
        deadline, since = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            lord = self.lord()
            ok = lord is not None and all(m.proc is not None for m in self.members) and \
                (self.kind == "etcdctl" or lord.node == "n3")
            if not ok:
                since = None
            elif since is None:
                since = time.monotonic()
            elif time.monotonic() - since >= 0.5:
                return lord
            time.sleep(0.01)
        return None

    def wait_next(self, after, old_pid, timeout=30.0):
        """The first run started after index `after` by another daemon than old_pid."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.record.runs()
            for r in runs[after:]:
                if r["pid"] != old_pid:
                    return r
            time.sleep(0.002)
        return None

    def reload(self, m):
        """The lord's graceful reload; returns the time it was asked."""
        t = wall()
        if self.kind == "etcdctl":   # a supervisor's restart: stop the group, start again
            os.killpg(m.proc.pid, signal.SIGTERM)
            m.stop(signal.SIGTERM)
            m.start()
        else:
            os.kill(m.proc.pid, signal.SIGHUP)
        return t

    def crash(self, m):
        t = wall()
        os.kill(m.proc.pid, signal.SIGKILL)
        m.proc.wait()
        m.proc = None
        m.logf.close()
        return t


def handovers(legion, runs, act, log):
    """runs forced handovers of the lord by act ("reload" or "crash"); returns the list of
    (ms from the act's reference to the next daemon's start) and the gaps."""
    out = []
    for k in range(runs):
        lord = legion.wait_settled()
        if lord is None:
            legion.ctx["bench"].anomaly("%s %s: no settled lord within 40 s (run %d)"
                                        % (legion.label, act, k))
            break
        before = legion.record.runs()
        old = before[-1]
        if act == "reload":
            legion.reload(lord)
        else:
            t_kill = legion.crash(lord)
        nxt = legion.wait_next(len(before), old["pid"])
        if nxt is None:
            legion.ctx["bench"].anomaly("%s %s: no next lord within 30 s (run %d)"
                                        % (legion.label, act, k))
            break
        if act == "reload":
            # from the old daemon's stop (or now, if it has not stopped: overlap)
            stop = next((r["stop"] for r in legion.record.runs() if r["pid"] == old["pid"]), None)
            out.append((nxt["start"] - (stop if stop else wall())) * 1000)
        else:
            out.append((nxt["start"] - t_kill) * 1000)
            legion.kill_orphans()
            dead = next(m for m in legion.members if m.proc is None)
            dead.start()     # the emperor (or systemd) starts the master again
    return out


def etcd_start(ctx):
    bench = ctx["bench"]
    client, peer = bench.ports("emperor", 2)
    d = os.path.join(bench.root, "etcd-legion")  # cluster.py's W7/W8 have "etcd"
    os.makedirs(d)
    env = dict(os.environ)
    env[ctx["mark_var"]] = ctx["mark"]
    url = "http://127.0.0.1:%d" % client
    logf = open(os.path.join(d, "etcd.log"), "w")
    proc = subprocess.Popen(["etcd", "--name", "bench", "--data-dir", os.path.join(d, "data"),
                             "--listen-client-urls", url, "--advertise-client-urls", url,
                             "--listen-peer-urls", "http://127.0.0.1:%d" % peer,
                             "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % peer,
                             "--initial-cluster", "bench=http://127.0.0.1:%d" % peer],
                            cwd=d, env=env, stdin=subprocess.DEVNULL, stdout=logf,
                            stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = subprocess.run(["etcdctl", "--endpoints=" + url, "endpoint", "health"],
                           capture_output=True, env=env)
        if r.returncode == 0:
            return proc, logf, url
        time.sleep(0.1)
    bench.anomaly("etcd did not become healthy within 30 s")
    proc.kill()
    proc.wait()
    logf.close()
    return None, None, None


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))] if s else None


def workloads(ctx, rep, only, runs, log):
    """W9 and/or W10 for each system; figures into rep (bench.py's Report)."""
    systems = [("ours", "emperor"), ("uwsgi", "uWSGI freq1 tol3"), ("etcdctl", "etcdctl lock")]
    etcd, etcd_log, url = etcd_start(ctx)
    if etcd is None:
        return
    try:
        for wid, act, title in (("W9", "reload", "handover on graceful reload"),
                                ("W10", "crash", "handover on SIGKILL of the lord")):
            if wid not in only:
                continue
            log("%s %s: three members, %d forced handovers each" % (wid, title, runs))
            if wid == "W9":
                f50 = rep.fig("W9.p50", "reload: old daemon stopped -> next started, p50", "ms",
                              lambda v: v <= 20, "<= 20 ms")
                f99 = rep.fig("W9.p99", "reload: p99", "ms", lambda v: v <= 100, "<= 100 ms")
            else:
                f50 = rep.fig("W10.p50", "SIGKILL -> next daemon started, p50", "ms",
                              lambda v: v <= TTL * 1000 + 500, "<= ttl + 500 ms")
                f99 = rep.fig("W10.max", "SIGKILL -> next daemon started, max", "ms",
                              lambda v: v <= TTL * 1000 + 500, "<= ttl + 500 ms")
            fx = rep.fig("%s.orphaned" % wid, "%s: daemons left running by a dead master" % wid,
                         "", lambda v: v == 0, "0")
            fo = rep.fig("%s.overlap" % wid, "%s: two lords' daemons at once, total" % wid, "ms",
                         lambda v: v == 0, "0 ms")
            for kind, label in systems:
                legion = Legion(ctx, kind, label, url)
                legion.start()
                try:
                    ms = handovers(legion, runs, act, log)
                finally:
                    overlap = legion.record.overlap() * 1000
                    legion.stop()
                if ms:
                    f50.add(label, pct(ms, 50))
                    f99.add(label, pct(ms, 99) if wid == "W9" else max(ms))
                    fo.add(label, overlap)
                    fx.add(label, legion.orphans)
                    rep.notes.append("%s %s: %d handovers, values %s ms; overlap %.0f ms; "
                                     "orphaned daemons killed by the bench: %d"
                                     % (wid, label, len(ms), " ".join("%.0f" % v for v in ms),
                                        overlap, legion.orphans))
                else:
                    f50.add(label, None)
            for fid in (f50.id, f99.id, fo.id, fx.id):
                rep.emit(fid)
    finally:
        etcd.terminate()
        etcd.wait()
        etcd_log.close()
