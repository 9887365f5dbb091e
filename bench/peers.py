"""peers.py — supervisord and PM2 as systems of bench/bench.py (issue 19), beside
this project and uWSGI, for the workloads they can do: W1 (a new program file, then
`supervisorctl update` / `pm2 start FILE`), W2 (restart one program) and W5 (under
wrk: supervisord can only restart, stopping every process first; PM2 has `pm2 reload`,
a rolling restart of cluster mode, Node only).

A system here has the interface bench.py's Ours and Uwsgi have (kind, label, ext,
stop_signal, argv, vassal_text, reloads_in_log) plus what a daemon driven by a CLI
needs: prepare(run) writes its main config, env(run) is added to the environment of
the daemon and of every CLI call, started(run) waits until the CLI can talk to it,
add(run, vname) and restart(run, vname) start the CLI call (a Popen, not waited for:
the harness measures from just before it until the port answers, so the CLI's own
start is part of the figure, as a user waits for it too).

PM2 is installed with npm into bench/peers/ (not globally) when absent; without npm
or network, the PM2 peer is skipped with a note (available() says why).
"""
import json
import os
import shutil
import signal
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS_DIR = os.path.join(HERE, "peers")
PM2_BIN = os.path.join(PEERS_DIR, "node_modules", ".bin", "pm2")
HOST = "127.0.0.1"
MARK_ENV = {}   # the harness's process mark (bench.py sets it): on every CLI call too


def cli(argv, env, logpath):
    """A CLI call, its output appended to logpath; not waited for."""
    full = dict(os.environ)
    full.update(MARK_ENV)
    full.update(env)
    with open(logpath, "a") as logf:
        return subprocess.Popen(argv, env=full, stdin=subprocess.DEVNULL, stdout=logf,
                                stderr=subprocess.STDOUT)


def pm2_version():
    try:
        with open(os.path.join(PEERS_DIR, "node_modules", "pm2", "package.json")) as f:
            return json.load(f).get("version")
    except (OSError, ValueError):
        return None


class Supervisord:
    """supervisord 4 (Debian `supervisor`), one program per file; fcgi-program, so
    that supervisord holds the listening socket and the workers inherit it."""
    kind = "supervisord"
    ext = ".conf"
    stop_signal = signal.SIGTERM
    w5_rows = {"graceful": "restart"}      # W5 row -> what is done: it only restarts

    def __init__(self, app, label="supervisord"):
        self.app, self.label = app, label

    @staticmethod
    def available():
        if shutil.which("supervisord") and shutil.which("supervisorctl"):
            return None
        return "supervisord not installed (Debian package supervisor)"

    def conf(self, run):
        return os.path.join(run.dir, "supervisord.conf")

    def prepare(self, run):
        d = run.dir
        with open(self.conf(run), "w") as f:
            f.write("[unix_http_server]\nfile=%s/supervisor.sock\n"
                    "[supervisord]\nnodaemon=true\nlogfile=%s/supervisord.log\n"
                    "pidfile=%s/supervisord.pid\nchildlogdir=%s\n"
                    "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = "
                    "supervisor.rpcinterface:make_main_rpcinterface\n"
                    "[supervisorctl]\nserverurl=unix://%s/supervisor.sock\n"
                    "[include]\nfiles = %s/*.conf\n" % (d, d, d, d, d, run.vdir))

    def env(self, run):
        return {}

    def argv(self, vdir, opts=()):
        return ["supervisord", "-c", os.path.join(os.path.dirname(vdir), "supervisord.conf")]

    def ctl(self, run, *args):
        return cli(["supervisorctl", "-c", self.conf(run)] + list(args), {},
                   os.path.join(run.dir, "ctl.log"))

    def started(self, run, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if subprocess.run(["supervisorctl", "-c", self.conf(run), "pid"],
                              capture_output=True).returncode == 0:
                return True
            time.sleep(0.05)
        return False

    def vassal_text(self, port, workers=1, reload="graceful", aux=None, keepalive=True):
        env = ",".join('%s="%s"' % kv for kv in sorted(self.app.env().items()))
        return ("[fcgi-program:PROGRAM]\n"
                "socket=tcp://%s:%d\n"
                "command=%s\n"
                "process_name=%%(program_name)s_%%(process_num)d\n"
                "numprocs=%d\n"
                "stopsignal=TERM\n"
                "%s") % (HOST, port, self.app.supervisord_command(), workers,
                         "environment=%s\n" % env if env else "")

    def add(self, run, vname):
        return self.ctl(run, "update")

    def restart(self, run, vname):
        return self.ctl(run, "restart", "%s:*" % vname)

    def reloads_in_log(self, text):
        return None

    @staticmethod
    def named(vname, text):
        """A peer's file names its program: PROGRAM in vassal_text() is the file's name."""
        return text.replace("PROGRAM", vname)


class Pm2:
    """PM2 (npm), its daemon in the foreground (`pm2 ls --no-daemon`) with PM2_HOME
    in the run's directory; cluster mode with bench/app.js."""
    kind = "pm2"
    ext = ".json"
    stop_signal = signal.SIGTERM
    w5_rows = {"chain": "reload"}          # pm2 reload: one instance after another

    def __init__(self, app, label="PM2"):
        self.app, self.label = app, label

    @staticmethod
    def available():
        if os.access(PM2_BIN, os.X_OK):
            return None
        if not shutil.which("node"):
            return "PM2 skipped: no node (Debian package nodejs)"
        if not shutil.which("npm"):
            return "PM2 skipped: no npm to install it"
        os.makedirs(PEERS_DIR, exist_ok=True)
        print("bench: installing PM2 with npm into %s" % PEERS_DIR, flush=True)
        try:
            r = subprocess.run(["npm", "install", "--prefix", PEERS_DIR, "--no-audit",
                                "--no-fund", "pm2"], capture_output=True, text=True,
                               timeout=300)
        except subprocess.TimeoutExpired:
            return "PM2 skipped: npm install pm2 timed out (no network?)"
        if r.returncode != 0 or not os.access(PM2_BIN, os.X_OK):
            lines = (r.stdout + r.stderr).strip().splitlines() or ["?"]
            first = [l for l in lines if l.startswith(("npm error", "npm ERR!"))] or lines
            return "PM2 skipped: npm install pm2 failed (no network?): %s" % first[0]
        return None

    def prepare(self, run):
        os.makedirs(os.path.join(run.dir, "pm2home"), exist_ok=True)

    def env(self, run):
        return {"PM2_HOME": os.path.join(run.dir, "pm2home")}

    def argv(self, vdir, opts=()):
        return ["node", PM2_BIN, "ls", "--no-daemon"]

    def pm2(self, run, *args):
        return cli(["node", PM2_BIN] + list(args), self.env(run),
                   os.path.join(run.dir, "ctl.log"))

    def started(self, run, timeout=60.0):
        deadline = time.monotonic() + timeout
        while not os.path.exists(os.path.join(run.dir, "pm2home", "rpc.sock")):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        # the files written before the start (supervisord reads them itself)
        for name in sorted(os.listdir(run.vdir)):
            if name.endswith(self.ext) and not name.startswith("."):
                p = self.pm2(run, "start", os.path.join(run.vdir, name))
                if p.wait(timeout) != 0:
                    return False
        return True

    def vassal_text(self, port, workers=1, reload="graceful", aux=None, keepalive=True):
        env = {"PORT": str(port)}
        env.update(self.app.env())
        return json.dumps({"apps": [{
            "name": "PROGRAM", "script": self.app.app_js, "exec_mode": "cluster",
            "instances": workers, "env": env, "wait_ready": True,
            "listen_timeout": 60000, "autorestart": True}]})

    def add(self, run, vname):
        return self.pm2(run, "start", run.path(vname))

    def restart(self, run, vname):
        return self.pm2(run, "restart", vname)

    def reload(self, run, vname):
        return self.pm2(run, "reload", vname)

    def reloads_in_log(self, text):
        return None

    named = staticmethod(Supervisord.named)
