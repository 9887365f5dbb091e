"""demand.py — the benchmarks of issue 17's on-demand vassals, run by bench.py
(`bench/run --only W11,W12`), with bench.py's Bench, Run and Report.

W11 cold start: the first request on an on-demand vassal (no master running) until its
response, and the same request answered by the worker program started by hand on an
already listening socket (its own start: hello-worker with the socket on fd 3, uWSGI
with it on fd 0); the overhead is the difference of the medians. uWSGI runs its
on-demand emperor (--emperor-on-demand-extension, the vassal on http-socket fd://0).
Between two runs the vassal stops itself for being idle (idle: 1s; uWSGI's --idle 1
--die-on-idle) and its socket goes back to the emperor.

W12: 1,000 on-demand vassals waiting for a connection: the emperor's RSS and fds.
"""
import os
import socket
import subprocess
import sys
import time

# bench.py's own module (run as __main__): its globals (BIN, set by Bench.snapshot)
# are the ones in use; a plain `import bench` would load a second copy.
B = sys.modules["__main__"]
if not hasattr(B, "Bench"):
    import bench as B

IDLE_S = 1


def ours_text(port):
    return B.OURS.vassal_text(port) + "on-demand: true\nidle: %ds\n" % IDLE_S


def uwsgi_text(port, on_demand=True):
    return ("[uwsgi]\nplugin = python3\nhttp-socket = fd://0\nwsgi-file = %s\n"
            "master = true\nprocesses = 1\ndisable-logging = true\n" % B.apps_mod.C.app_py
            + ("idle = %d\ndie-on-idle = true\n" % IDLE_S if on_demand else ""))


UWSGI_OD = B.Uwsgi("uWSGI on-demand", ["--emperor-on-demand-extension", ".socket"])


def write_vassals(run, system, ports):
    """Files written before the emperor starts: ours, or uWSGI's ini and its .socket."""
    for i, port in enumerate(ports):
        name = "v%04d" % i
        if system.kind == "emperor":
            run.write([(name, ours_text(port))])
        else:
            run.write([(name, uwsgi_text(port))])
            with open(run.path(name) + ".socket", "w") as f:
                f.write("%s:%d\n" % (B.HOST, port))


def one_request(port, timeout=30.0, then=None):
    """Seconds from connect to the whole response (200), or None; then() runs once
    the request is sent (it starts the server by hand)."""
    t0 = B.now()
    try:
        with socket.create_connection((B.HOST, port), timeout=timeout) as s:
            s.sendall(B.REQUEST)
            if then:
                then()
            buf = bytearray()
            while True:
                data = s.recv(65536)
                buf += data
                status, _pid, complete = B.parse_response(buf)
                if complete or not data:
                    break
    except OSError:
        return None
    return B.now() - t0 if status == 200 else None


def wait_for(cond, timeout):
    deadline = B.now() + timeout
    while B.now() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


def own_start(system, port):
    """The worker program started by hand on a listening socket with a request already
    queued: seconds until the response (its own start), or None."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((B.HOST, port))
    lsock.listen(128)
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    if system.kind == "emperor":   # fd 3 and LISTEN_PID of the exec'd process ($$)
        argv = ["/bin/sh", "-c", 'exec 3<&0 0</dev/null; LISTEN_PID=$$ LISTEN_FDS=1 exec "$0"',
                os.path.join(B.BIN, "hello-worker")]
    else:
        ini = os.path.join(B.tempfile.gettempdir(), "emperor-bench-own-%d.ini" % os.getpid())
        with open(ini, "w") as f:
            f.write(uwsgi_text(port, on_demand=False))
        argv = ["uwsgi", "--ini", ini]
    procs = []

    def start():
        procs.append(subprocess.Popen(argv, stdin=lsock.fileno(), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, env=env,
                                      start_new_session=True))
    took = one_request(port, then=start)
    if not procs:
        lsock.close()
        return None
    proc = procs[0]
    proc.send_signal(B.signal.SIGINT if system.kind == "uwsgi" else B.signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    lsock.close()
    return took


def idle_again(run, system, stops):
    """Waits until the vassal has stopped for being idle `stops` times in all."""
    if system.kind == "emperor":
        return wait_for(lambda: run.log_text().count(": stopped (idle)") >= stops, 30.0)
    return wait_for(lambda: not B.children_map().get(run.pid), 30.0)


def w11(bench, rep, runs):
    B.log("W11 cold start: first request on an on-demand vassal -> response, minus the "
          "worker's own start")
    cold = rep.fig("W11.cold", "cold first request", "ms")
    own = rep.fig("W11.own", "worker's own start", "ms")
    over = rep.fig("W11", "on-demand overhead", "ms", lambda v: v <= 10.0, "<= 10 ms")
    for system in (B.OURS, UWSGI_OD):
        label = "emperor" if system.kind == "emperor" else system.label
        port = bench.ports(system.kind, 1)[0]
        run = B.Run(bench, system, "w11")
        write_vassals(run, system, [port])
        run.start()
        time.sleep(B.settle_for(system))
        colds = []
        for i in range(runs):
            t = one_request(port)
            if t is None:
                bench.anomaly("W11 %s: no 200 on the cold socket" % label, run.log_text())
                break
            colds.append(t * 1000.0)
            cold.add(label, t * 1000.0)
            if not idle_again(run, system, i + 1):
                bench.anomaly("W11 %s: did not stop for being idle" % label, run.log_text())
                break
        run.stop()
        owns = []
        for _ in range(runs):
            t = own_start(system, bench.ports(system.kind, 1)[0])
            if t is not None:
                owns.append(t * 1000.0)
                own.add(label, t * 1000.0)
        if colds and owns:
            base = B.statistics.median(owns)
            for c in colds:
                over.add(label, c - base)
    for fid in ("W11.cold", "W11.own", "W11"):
        rep.emit(fid)


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


def w12(bench, rep, n):
    B.log("W12: %d on-demand vassals waiting for a connection; the emperor's RSS and fds" % n)
    rss = rep.fig("W12.rss", "emperor RSS, %d on-demand" % n, "MiB", lambda v: v <= 8.0,
                  "<= 8 MiB")
    fds = rep.fig("W12.fds", "emperor fds, %d on-demand" % n, "fds")
    for system in (B.OURS, UWSGI_OD):
        label = "emperor" if system.kind == "emperor" else system.label
        needle = (": on-demand: waiting for a connection" if system.kind == "emperor"
                  else '"on demand" instance detected')
        run = B.Run(bench, system, "w12")
        write_vassals(run, system, bench.ports(system.kind, n))
        run.start()
        if not wait_for(lambda: run.log_text().count(needle) >= n, 120.0):
            bench.anomaly("W12 %s: %d of %d vassals wait for a connection (a port taken by "
                          "another program?)" % (label, run.log_text().count(needle), n),
                          run.log_text()[-4000:])
        time.sleep(1.0)
        if B.children_map().get(run.pid):
            bench.anomaly("W12 %s: processes started without a connection" % label)
        rss.add(label, B.rss_kib(run.pid) / 1024.0)
        fds.add(label, fd_count(run.pid))
        run.stop(timeout=120.0)
    rep.emit("W12.rss")
    rep.emit("W12.fds")
