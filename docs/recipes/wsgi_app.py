"""wsgi_app.py — the WSGI application of the gunicorn and uWSGI recipes.

Answers every path with one line naming the process that served it, and an
X-Worker-Pid header (the integration tests count the pids that answered).
/slow?ms=N answers after N milliseconds, and logs "slow request started" first
(to see a graceful stop finish it).
"""
import os
import sys
import time
from urllib.parse import parse_qs

GREETING = os.environ.get("GREETING", "hello")


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/slow":
        ms = parse_qs(environ.get("QUERY_STRING", "")).get("ms", ["1000"])[0]
        print("slow request started in pid %d" % os.getpid(), file=sys.stderr, flush=True)
        time.sleep(min(int(ms), 60000) / 1000)
    body = ("%s from pid %d\n" % (GREETING, os.getpid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body))),
                              ("X-Worker-Pid", str(os.getpid()))])
    return [body]
