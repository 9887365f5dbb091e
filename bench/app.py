# app.py — the WSGI app of the benchmarks (bench/run, issues 9 and 19), the same file
# under uWSGI (wsgi-file) and under this project (bench/pyworker.py serves it on the
# sockets a vassal passes). It answers every request like the reference worker does:
# 200, a one-line body, and the serving process's pid in X-Worker-Pid, so a reload is
# seen as a new pid.
#
# BENCH_APP_START_MS=N: the import costs N ms of CPU first (a busy loop on the
# process's CPU clock, so it takes longer under load, as a framework's imports do):
# the "Python app" of the benchmarks uses 200, like a small web framework's start.
import os
import time


def _start_cost(ms):
    end = time.process_time() + ms / 1000.0
    x = 0
    while time.process_time() < end:
        for i in range(1000):
            x += i * i
    return x


_start_cost(int(os.environ.get("BENCH_APP_START_MS", "0") or 0))


def application(environ, start_response):
    pid = str(os.getpid())
    body = ("hello from pid %s\n" % pid).encode()
    start_response("200 OK", [
        ("Content-Type", "text/plain"),
        ("Content-Length", str(len(body))),
        ("X-Worker-Pid", pid),
    ])
    return [body]
