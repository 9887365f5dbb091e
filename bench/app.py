# app.py — the WSGI app the uWSGI side of the benchmarks runs (bench/run, issue 9).
# It answers every request like the reference worker does: 200, a one-line body,
# and the serving process's pid in X-Worker-Pid, so a reload is seen as a new pid.
import os


def application(environ, start_response):
    pid = str(os.getpid())
    body = ("hello from pid %s\n" % pid).encode()
    start_response("200 OK", [
        ("Content-Type", "text/plain"),
        ("Content-Length", str(len(body))),
        ("X-Worker-Pid", pid),
    ])
    return [body]
