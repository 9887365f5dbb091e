#!/usr/bin/env python3
"""preload.py — what workers.preload saves (issue 19): a vassal with N Python workers
serving bench/app.py (BENCH_APP_START_MS of CPU at import), exec'd (bench/pyworker.py,
one import per worker) against preloaded (examples/preload.py, one import per
generation). Per run: the time from the master's start to "ready: N workers", and the
CPU seconds of the whole tree (the master's rusage as its parent sees it at its exit:
every worker and template is reaped within the tree, so each one's CPU is in it).

    python3 bench/preload.py [--runs 3] [--workers 4] [--start-ms 200]

Needs build/vassal (make). Loopback only; a free port below 32768.
"""
import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        for port in range(20000 + os.getpid() % 5000, 32768):
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    sys.exit("no free port")


def vassal_text(mode, port, workers, start_ms):
    if mode == "exec":
        exec_line = "[python3, %s/bench/pyworker.py]" % ROOT
        more = ""
    else:
        exec_line = "[python3, %s/examples/preload.py, app:application]" % ROOT
        more = "  preload: true\n"
    return ("sockets:\n  - name: http\n    listen: 127.0.0.1:%d\n"
            "workers:\n  count: %d\n  exec: %s\n  cwd: %s/bench\n  ready: notify\n"
            "  ready-timeout: 120s\n  env: {BENCH_APP_START_MS: \"%d\"}\n%s"
            % (port, workers, exec_line, ROOT, start_ms, more))


def one_run(mode, workers, start_ms):
    with tempfile.TemporaryDirectory() as d:
        cfg, log = os.path.join(d, "v.yaml"), os.path.join(d, "v.log")
        with open(cfg, "w") as f:
            f.write(vassal_text(mode, free_port(), workers, start_ms))
        want = "ready: %d workers, generation 1" % workers
        with open(log, "w") as out:
            t0 = time.monotonic()
            p = subprocess.Popen([os.path.join(ROOT, "build/vassal"), cfg], stdout=out,
                                 stderr=subprocess.STDOUT)
            deadline = t0 + 120
            while time.monotonic() < deadline:
                with open(log) as f:
                    if want in f.read():
                        break
                time.sleep(0.01)
            else:
                p.kill()
                p.wait()
                sys.exit("%s: not ready in 120 s; see %s" % (mode, log))
            ready = time.monotonic() - t0
            p.send_signal(signal.SIGTERM)
            _, status, ru = os.wait4(p.pid, 0)
            p.returncode = status
        return ready, ru.ru_utime + ru.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--start-ms", type=int, default=200)
    a = ap.parse_args()
    print("%d workers, BENCH_APP_START_MS=%d, %d runs each (median; all runs)"
          % (a.workers, a.start_ms, a.runs))
    for mode in ("exec", "preload"):
        runs = [one_run(mode, a.workers, a.start_ms) for _ in range(a.runs)]
        ready = [r for r, _ in runs]
        cpu = [c for _, c in runs]
        print("%-8s start to all ready %6.2f s  (%s)   CPU of the tree %6.2f s  (%s)"
              % (mode, statistics.median(ready), " ".join("%.2f" % r for r in ready),
                 statistics.median(cpu), " ".join("%.2f" % c for c in cpu)))


if __name__ == "__main__":
    main()
