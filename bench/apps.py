"""apps.py — the two apps every workload of bench/bench.py runs with (issue 19).

  c       the reference worker, build/examples/hello-worker: starts in about a
          millisecond, so a figure is the orchestrator's own cost. uWSGI runs
          bench/app.py with no start cost; PM2 runs bench/app.js, the same.
  python  bench/app.py, whose import costs START_MS of CPU like a small web
          framework's imports, served by bench/pyworker.py (socket-activated, READY=1
          via NOTIFY_SOCKET); the very same file as WSGI under uWSGI; bench/app.js
          with the same start cost under PM2 (its cluster mode runs Node only).

Each app knows how each system runs it: the worker lines of a vassal file, the
environment line of a uWSGI ini, the command of a supervisord program, the script of
a PM2 app. snapshot() copies the files into the run's temporary root first, like
the binaries, so that edits in the tree during a run do not change what is measured
(with examples/preload.py, the template W14 runs the Python app with).
"""
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
START_MS = 200
FILES = ("app.py", "pyworker.py", "app.js")
RECIPES = ("preload.py",)   # from examples/: W14's template (bench/preforked.py)


class App:
    def __init__(self, name, start_ms, title):
        self.name, self.start_ms, self.title = name, start_ms, title
        self.dir = HERE         # where app.py, pyworker.py and app.js are
        self.bin = None         # where hello-worker is (set by snapshot)

    def snapshot(self, bin_dir):
        self.bin = bin_dir
        self.dir = bin_dir
        for d, names in ((HERE, FILES), (os.path.join(HERE, "..", "examples"), RECIPES)):
            for f in names:
                if not os.path.exists(os.path.join(bin_dir, f)):
                    shutil.copy2(os.path.join(d, f), bin_dir)

    @property
    def app_py(self):
        return os.path.join(self.dir, "app.py")

    @property
    def app_js(self):
        return os.path.join(self.dir, "app.js")

    def env(self):
        return {"BENCH_APP_START_MS": str(self.start_ms)} if self.start_ms else {}

    def worker_argv(self):
        """The worker as a vassal or a supervisord program runs it."""
        if self.name == "c":
            return [os.path.join(self.bin, "hello-worker")]
        return ["python3", os.path.join(self.dir, "pyworker.py")]

    def vassal_worker_yaml(self):
        """The lines under `workers:` naming the program (and its environment)."""
        text = "  exec: [%s]\n" % ", ".join(self.worker_argv())
        if self.start_ms:
            # W3 starts 100-500 of them at once: sharing the CPU fairly, they all become
            # ready near the end (~50 s for 500 on 2 idle cores, minutes on a loaded
            # machine); a timeout would stop them all and start again
            text += "  ready-timeout: 300s\n  env:\n"
            text += "".join("    %s: \"%s\"\n" % kv for kv in sorted(self.env().items()))
        return text

    def uwsgi_ini(self):
        return "".join("env = %s=%s\n" % kv for kv in sorted(self.env().items()))

    def supervisord_command(self):
        """supervisord's fcgi-program passes its socket as fd 0: the wrapper moves it
        to fd 3 and sets LISTEN_FDS/LISTEN_PID (its own pid, kept across exec)."""
        return ("/bin/sh -c 'exec 3<&0 0</dev/null; export LISTEN_FDS=1 LISTEN_PID=$$; "
                "exec %s'" % " ".join(self.worker_argv()))


C = App("c", 0, "C reference worker (hello-worker)")
PYTHON = App("python", START_MS, "Python app, %d ms of CPU at start" % START_MS)
APPS = {"c": C, "python": PYTHON}


def selected(option):
    """--app c|python|both -> the App objects, in order."""
    if option == "both":
        return [C, PYTHON]
    return [APPS[option]]
