"""preforked.py — W14: four Python workers per vassal (issue 19), run by bench.py
(`bench/run --only W14`), with bench.py's Bench, Run, Poller and Report.

Each vassal runs FOUR workers of the Python app (bench/app.py, START_MS of CPU at its
import). uWSGI (master = true, processes = 4, no lazy-apps) loads the app once in its
master and forks the four workers; ours runs `workers.preload: true` with the recipe
examples/preload.py (docs/worker.md section 7): one template per generation loads the
app once and forks the workers the master asks for. Both pay one load per vassal per
generation, so what differs is the orchestrators' own work around it.

  W14.start   N vassals dropped at once into a running emperor (uWSGI: --emperor-freq
              1, like W3); until every port answers 200; the CPU time of the whole
              tree once the processes are all there; ours / uWSGI's time.
  W14.reload  M vassals serving, SIGHUP to the emperor (ours: its default graceful
              reload and --reload-concurrency, or bench.py's --reload-concurrency N
              as in W6; uWSGI's emperor in its defaults, like W6); until every
              port answers from a pid that was not in the tree before (a vassal has
              four workers: another old one answering is not a reload); the CPU
              time of the tree; ours / uWSGI's time.

Notes say how many times the app was loaded per vassal and generation (our log's
"template gN started" lines; uWSGI's "WSGI app 0 ... ready" lines). Ports from the
bench's ranges (below 32768); every emperor stopped by pid (Run.stop) and its marked
processes swept; a wait that runs out is an anomaly with the emperor's log.
"""
import collections
import os
import re
import signal
import sys
import time

# bench.py's own module (run as __main__): its globals (BIN, set by Bench.snapshot)
# are the ones in use; a plain `import bench` would load a second copy.
B = sys.modules["__main__"]
if not hasattr(B, "Bench"):
    import bench as B

WORKERS = 4
# W14.reload asks each port every 100 ms (500 requests/s at 50 ports), not W6's ~5,000/s
# in all: every port answers throughout a reload, and each answer costs its server CPU
# (uWSGI 66-73 us; the recipe's own server 108-116 us, 210-250 us with wsgiref; measured
# on this machine), which at W6's rate took a core from the reload being measured.
RELOAD_POLL = 0.1
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Preforked(B.Ours):
    """Our emperor; each vassal 4 workers forked by examples/preload.py's template."""

    def __init__(self, app):
        super().__init__("emperor", app=app)   # app.dir: the run's snapshot (apps.py),
        # where Bench.snapshot() copied examples/preload.py beside app.py

    def vassal_text(self, port, workers=WORKERS, reload="graceful", aux=None, keepalive=True):
        d = self.app.dir
        env = "".join("    %s: \"%s\"\n" % kv for kv in sorted(self.app.env().items()))
        return ("sockets:\n"
                "  - {name: http, listen: \"%s:%d\"}\n"
                "workers:\n"
                "  count: %d\n"
                "  exec: [python3, %s, \"app:application\"]\n"
                "  cwd: %s\n"
                "  preload: true\n"
                "  ready: notify\n"
                "  ready-timeout: 300s\n"
                "  env:\n%s"
                "reload: %s\n") % (B.HOST, port, workers, os.path.join(d, "preload.py"),
                                   d, env, reload)


def procs_per_vassal(system):
    """Master, (template,) workers."""
    return 1 + (1 if system.kind == "emperor" else 0) + WORKERS


def reaped_cpu_s(pid):
    """CPU seconds of the children pid has waited for (cutime + cstime, in ticks)."""
    text = B.read_text("/proc/%d/stat" % pid)
    if not text:
        return 0.0
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[13]) + int(fields[14])) / float(CLK_TCK)


def tree_cpu(root):
    """(CPU seconds, pids) of the tree under root: each live process's own CPU
    (schedstat, ns) plus what it reaped (the template's middle processes, a reload's
    old workers), so that processes gone meanwhile still count."""
    tree = [root] + B.descendants(root)
    cpu = sum((B.proc_cpu_ns(p) or 0) / 1e9 + reaped_cpu_s(p) for p in tree)
    return cpu, set(tree)


def wait_tree(run, want, timeout):
    """Waits until the emperor's tree has `want` processes; the count seen last."""
    deadline = B.now() + timeout
    count = 0
    while B.now() < deadline:
        count = 1 + len(B.descendants(run.pid))
        if count == want:
            break
        time.sleep(0.2)
    return count


def loads_note(system, text, what, vassals):
    """How many times the app was loaded, per vassal and generation, in a log slice."""
    if system.kind == "emperor":
        per = collections.Counter(re.findall(r"^\[(\S+)\] .*: template (g\d+) started",
                                             text, re.M))
        hist = collections.Counter(per.values())
        gens = sorted({g for _, g in per})
        return ("%s %s: app loads (\"template gN started\") per vassal and generation: "
                "%s (generations %s, %d vassals)"
                % (what, system.label,
                   "; ".join("%d load%s in %d vassal-generations" % (k, "s" * (k != 1), v)
                             for k, v in sorted(hist.items())) or "none",
                   " ".join(gens) or "-", vassals))
    loads = len(re.findall(r"WSGI app \d+ \(mountpoint='[^']*'\) ready", text))
    return ("%s %s: %d app loads (\"WSGI app 0 ... ready\", one per master) for %d vassals"
            % (what, system.label, loads, vassals))


def load_info():
    return {"start": (B.read_text("/proc/loadavg") or "").strip()}


def end_load(info, t0):
    info["end"] = (B.read_text("/proc/loadavg") or "").strip()
    info["seconds"] = round(B.now() - t0, 1)


# ---- W14.start --------------------------------------------------------------------------

def start_run(bench, rep, system, n, ft, fc):
    run = B.Run(bench, system, "w14-start").start()
    time.sleep(B.settle_for(system))
    ports = bench.ports(system.kind, n)
    files = [("v%04d" % i, system.vassal_text(p, workers=WORKERS))
             for i, p in enumerate(ports)]
    cpu0, _ = tree_cpu(run.pid)     # the emperor's own so far
    load0 = (B.read_text("/proc/loadavg") or "").strip()
    t0 = run.drop(files)
    done = B.Poller(ports, B.want_ok, B.poll_delay(n)).run(60.0 + n * 2.0)
    if len(done) < n:
        bench.anomaly("W14.start %s: %d of %d ports never answered 200"
                      % (system.label, n - len(done), n), run.log_text())
        ft.add(system.label, None)
        run.stop(timeout=120.0)
        return
    ft.add(system.label, max(done.values()) - t0)
    want = 1 + n * procs_per_vassal(system)
    count = wait_tree(run, want, 60.0)
    if count != want:
        bench.anomaly("W14.start %s: %d processes in the tree 60 s after all answered, "
                      "expected %d" % (system.label, count, want), run.log_text())
    time.sleep(1.0)
    cpu1, _ = tree_cpu(run.pid)
    fc.add(system.label, cpu1 - cpu0)
    rep.notes.append(loads_note(system, run.log_text(), "W14.start", n))
    rep.notes.append("W14.start %s: %d vassals answered in %.2f s, tree CPU %.2f s, %d "
                     "processes; load before %s" % (system.label, n, max(done.values()) - t0,
                                                    cpu1 - cpu0, count, load0))
    run.stop(timeout=120.0)


def w14_start(bench, rep, n, runs, ours, uwsgi):
    B.log("W14.start: %d vassals of %d Python workers dropped at once (ours: preload, "
          "uWSGI: fork after load); until all answer 200; CPU of the tree" % (n, WORKERS))
    ft = rep.fig("W14.start.time", "%d vassals of %d workers all answer" % (n, WORKERS), "s")
    fc = rep.fig("W14.start.cpu", "%d vassals of %d workers: CPU time of the tree to start "
                 "them" % (n, WORKERS), "s")
    for system in (ours, uwsgi):
        for _ in range(runs):
            start_run(bench, rep, system, n, ft, fc)
    rep.emit("W14.start.time")
    rep.emit("W14.start.cpu")
    rep.ratio_fig("W14.start.vs_uwsgi", "%d vassals of %d workers all answer, ours / "
                  "uWSGI's" % (n, WORKERS), ft.values.get(ours.label),
                  ft.values.get(uwsgi.label), 0.7)


# ---- W14.reload -------------------------------------------------------------------------

def reload_once(bench, rep, system, run, ports, f, fc):
    """One SIGHUP; False if the vassals were not all serving before it."""
    time.sleep(1.0)
    n = len(ports)
    before = B.get_pids(ports)
    if len(before) < n:
        bench.anomaly("W14.reload %s: %d ports did not answer before SIGHUP"
                      % (system.label, n - len(before)), run.log_text())
        return False
    cpu0, old = tree_cpu(run.pid)
    log_from = len(run.log_text())
    t0 = B.now()
    os.kill(run.pid, signal.SIGHUP)
    done = B.Poller(ports, lambda p, s, pid: s == 200 and pid not in old,
                    RELOAD_POLL).run(180.0)
    if len(done) < n:
        bench.anomaly("W14.reload %s: %d of %d vassals not answering from a new pid "
                      "within 180 s" % (system.label, n - len(done), n), run.log_text())
        f.add(system.label, None)
        return False
    f.add(system.label, max(done.values()) - t0)
    want = 1 + n * procs_per_vassal(system)
    count = wait_tree(run, want, 60.0)
    if count != want:
        bench.anomaly("W14.reload %s: %d processes in the tree 60 s after all answered, "
                      "expected %d" % (system.label, count, want), run.log_text())
    time.sleep(1.0)
    cpu1, _ = tree_cpu(run.pid)
    fc.add(system.label, cpu1 - cpu0)
    rep.notes.append(loads_note(system, run.log_text()[log_from:], "W14.reload", n))
    return True


def w14_reload(bench, rep, n, runs, ours, uwsgi):
    B.log("W14.reload: %d vassals of %d Python workers, SIGHUP to the emperor; until every "
          "vassal answers from a new pid" % (n, WORKERS))
    f = rep.fig("W14.reload", "SIGHUP reload of %d vassals of %d workers" % (n, WORKERS), "s")
    fc = rep.fig("W14.reload.cpu", "SIGHUP reload of %d vassals of %d workers: CPU time of "
                 "the tree" % (n, WORKERS), "s")
    window = (["--reload-concurrency", str(B.RELOAD_CONCURRENCY)] if B.RELOAD_CONCURRENCY
              else [])
    for system, opts in ((ours, window), (uwsgi, [])):   # ours: its default window
        ports = bench.ports(system.kind, n)
        run = B.Run(bench, system, "w14-reload", opts)
        run.write([("v%04d" % i, system.vassal_text(p, workers=WORKERS))
                   for i, p in enumerate(ports)])
        run.start()
        if B.wait_all_ok(run, ports, 60.0 + n * 2.0,
                         "W14.reload %s start" % system.label) is not None:
            for _ in range(runs):
                if not reload_once(bench, rep, system, run, ports, f, fc):
                    break
        run.stop(timeout=120.0)
    rep.emit("W14.reload")
    rep.emit("W14.reload.cpu")
    rep.ratio_fig("W14.reload.vs_uwsgi", "SIGHUP reload of %d vassals of %d workers, ours / "
                  "uWSGI's" % (n, WORKERS), f.values.get(ours.label),
                  f.values.get(uwsgi.label), 0.5)


def w14(bench, rep, quick):
    """Both workloads; returns {workload: load average at its start and end}."""
    app = B.apps_mod.PYTHON
    ours = Preforked(app)
    load = {}
    for name, fn, n, uwsgi in (
            ("W14.start", w14_start, 50 if quick else 100,
             B.Uwsgi("uWSGI freq1", ["--emperor-freq", "1"], app=app)),
            ("W14.reload", w14_reload, 20 if quick else 50,
             B.Uwsgi("uWSGI default", app=app))):
        load[name] = info = load_info()
        t0 = B.now()
        try:
            fn(bench, rep, n, 1 if quick else 3, ours, uwsgi)
        finally:
            end_load(info, t0)
    return load
