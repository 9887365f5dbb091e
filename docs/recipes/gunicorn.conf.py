"""gunicorn.conf.py — the gunicorn recipe's settings file (gunicorn --config=...).

It only moves READY=1 later. gunicorn 20.1 sends READY=1 from its arbiter *before*
forking its workers. A SIGTERM that comes in the next few hundred milliseconds (a
reload right after a start) reaches a worker that has not yet installed its own
signal handlers: the worker ignores it, keeps serving after the arbiter closed its
sockets, and is SIGKILLed by the arbiter after --graceful-timeout, cutting the
request it is serving (measured: 20 s reloads and one failed request). So the
arbiter is kept from sending READY=1 (NOTIFY_SOCKET is taken out of its
environment) and the last of the first batch of workers sends it once it is
initialised (signal handlers installed, app loaded). The master accepts it:
gunicorn's workers are in the process group of the arbiter it started.
"""
import os
import socket

_notify_socket = os.environ.pop("NOTIFY_SOCKET", None)


def _sd_notify(message):
    if not _notify_socket:
        return
    path = _notify_socket
    if path.startswith("@"):
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(message.encode(), path)
    except OSError as e:
        print("sd_notify: %s" % e, flush=True)


def post_worker_init(worker):
    # The arbiter numbers its workers 1, 2, ... as it forks them (worker.age):
    # the worker numbered like --workers is the last of the first batch. Later
    # ones (respawns) send READY=1 again, which the master ignores.
    if worker.age >= worker.cfg.workers:
        _sd_notify("READY=1\nSTATUS=%d gunicorn workers booted" % worker.cfg.workers)
