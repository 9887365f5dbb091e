/* support.h — helpers for integration tests that run real processes: temp dirs and
 * files, spawning with a per-run tag in the environment, waiting for log lines and
 * exits, finding leftover processes through /proc, and a loopback HTTP client with a
 * background load generator. Every wait is bounded by a timeout and polls a condition
 * (1-10 ms apart); none stands in for an event. Functions return 0 / a count / a
 * pointer on success and -1 / NULL on failure or timeout, after printing why to
 * stderr. Not thread-safe except sup_load_*, which run their own thread. */
#ifndef EMPEROR_TEST_SUPPORT_H
#define EMPEROR_TEST_SUPPORT_H

#include <stddef.h>
#include <sys/types.h>

/* ---- set-up, time ---------------------------------------------------------- */

/* Call first in each integration test's main(): makes us a child subreaper (every
 * orphaned descendant becomes our child), ignores SIGPIPE and sets the run's tag. */
void sup_init(void);
/* The value of EMPEROR_TEST_TAG given to every process we spawn: "<pid>-<ns>". */
const char *sup_tag(void);
long long sup_now_ms(void); /* CLOCK_MONOTONIC */
/* The pause between two checks of a condition in a wait loop (2 ms). Never a
 * substitute for waiting for the condition itself. */
void sup_poll_pause(void);

/* ---- files ------------------------------------------------------------------- */

char *sup_tmpdir(void);                /* mkdtemp("/tmp/emperor-test.XXXXXX"), malloc'd */
void sup_rmtree(const char *path);     /* rm -rf; never follows symlinks */
int sup_write_file(const char *path, const char *content);
/* Writes a hidden temp file beside path, then rename()s it over path. */
int sup_write_file_atomic(const char *path, const char *content);
char *sup_read_file(const char *path); /* malloc'd, NUL-terminated; NULL if absent */
/* malloc'd "dir/name" (asprintf). */
char *sup_path(const char *dir, const char *name);

/* Absolute path of $EMPEROR_BUILD (default "build"), resolved against the cwd. */
const char *sup_build_dir(void);
char *sup_bin(const char *rel);
/* A private copy of a built binary in dir (malloc'd path): a rebuild of the shared
 * build directory during the run does not change what the test runs (nor turn a
 * chain reload into a graceful one, as a new vassal binary on disk does). */
char *sup_copy_bin(const char *dir, const char *rel);        /* malloc'd "<build>/<rel>" */

/* ---- processes ----------------------------------------------------------------- */

struct sup_proc {
	pid_t pid;
	pid_t pgid;        /* its process group: its own pid with SUP_SPAWN_NEW_PGROUP */
	char *logpath;     /* stdout and stderr, appended */
	int exited;        /* reaped: status is valid */
	int status;        /* as from waitpid() */
	struct sup_proc *next; /* private: the list of unreaped children */
};

enum sup_spawn_flags {
	SUP_SPAWN_NEW_PGROUP = 1 << 0, /* setpgid(0, 0) in the child */
};

struct sup_spawn_opts {
	const char *cwd;         /* NULL: ours */
	const char *logpath;     /* required: created, appended to */
	int flags;               /* enum sup_spawn_flags */
	const int *listen_fds;   /* passed as fds 3.. with LISTEN_FDS/LISTEN_PID set */
	int n_listen_fds;
	const char *listen_fdnames; /* LISTEN_FDNAMES, or NULL */
};

/* fork + exec argv[0] (PATH searched if it has no '/'). stdin is /dev/null, stdout
 * and stderr go to logpath; every other fd is closed at exec; SIGPIPE and the signal
 * mask are reset. The environment is ours less LISTEN_*, NOTIFY_SOCKET and any name
 * in extra_env, plus extra_env ("K=V"; a bare "K" only removes K; NULL-terminated,
 * may be NULL) plus EMPEROR_TEST_TAG. NULL if exec fails. */
struct sup_proc *sup_spawn_ex(char *const argv[], char *const extra_env[],
			      const struct sup_spawn_opts *opts);
/* sup_spawn_ex with cwd and logpath only: same process group as ours. */
struct sup_proc *sup_spawn(char *const argv[], char *const extra_env[], const char *cwd,
			   const char *logpath);
/* Socket activation: listen_fd becomes fd 3, LISTEN_FDS=1, LISTEN_PID=<child pid>,
 * LISTEN_FDNAMES=http. The caller still owns (and should close) listen_fd. */
struct sup_proc *sup_spawn_activated(int listen_fd, char *const argv[], char *const extra_env[],
				     const char *logpath);

/* 0 once reaped (fills exited/status, also if already reaped), -1 on timeout. */
int sup_wait_exit(struct sup_proc *p, int timeout_ms);
/* kill(pid, sig) + wait_exit; if still alive then, SIGKILL, reap, and -1. */
int sup_stop(struct sup_proc *p, int sig, int timeout_ms);
/* kill(-pgid, sig): the whole group of a SUP_SPAWN_NEW_PGROUP process. */
int sup_kill_group(struct sup_proc *p, int sig);
/* Kills (SIGKILL) and reaps it if still running, then frees. NULL is fine. */
void sup_proc_free(struct sup_proc *p);
/* "exited 0", "killed by SIGKILL" ... for messages; a static buffer. */
const char *sup_status_str(int status);

/* Log of a process: a "mark" is a byte offset; needles are plain substrings. */
size_t sup_log_size(struct sup_proc *p);
/* 0 when needle appears at/after from_mark; -1 on timeout (prints the log's tail). */
int sup_wait_log(struct sup_proc *p, size_t from_mark, const char *needle, int timeout_ms);
int sup_count_log(struct sup_proc *p, size_t from_mark, const char *needle);
/* The same on any file (a vassal's log:); sup_file_size() gives its mark. */
size_t sup_file_size(const char *path); /* 0 if absent */
int sup_wait_file(const char *path, size_t from_mark, const char *needle, int timeout_ms);
int sup_count_file(const char *path, size_t from_mark, const char *needle);
/* Only up to to_mark (a size taken once): two counts of a file still being written,
 * comparable with each other. */
int sup_count_file_range(const char *path, size_t from_mark, size_t to_mark, const char *needle);
void sup_print_tail(const char *path, int lines);

/* ---- /proc -------------------------------------------------------------------- */

/* Live (non-zombie) processes whose environment holds our tag, ourselves excluded. */
int sup_tagged_pids(pid_t *out, int max);
/* Reaps our zombie children and waits until no tagged process and no descendant of
 * ours is left. On timeout prints pid, state and cmdline of each and returns -1. */
int sup_wait_no_leftovers(int timeout_ms);
/* Every process below root (zombies included), found by walking ppid links. */
int sup_descendants(pid_t root, pid_t *out, int max);
int sup_count_fds(pid_t pid);        /* entries of /proc/PID/fd, -1 if gone */
char sup_pid_state(pid_t pid);       /* 'R', 'S', 'Z' ... from /proc/PID/stat; 0 if gone */
int sup_pid_alive(pid_t pid);        /* exists and is not a zombie */
pid_t sup_pid_ppid(pid_t pid);       /* -1 if gone */
pid_t sup_pid_pgid(pid_t pid);       /* -1 if gone */
/* Its voluntary context switches so far (each a wake-up from a wait), from
 * /proc/PID/status; -1 if gone. */
long sup_pid_wakeups(pid_t pid);
/* Waits until pid sleeps in a select, poll or epoll wait (state S): 0, or -1 on
 * timeout or if it died. Take a wake-up count after this, not after a reply that the
 * process may still be finishing. */
int sup_wait_pid_asleep(pid_t pid, int timeout_ms);
char *sup_pid_cmdline(pid_t pid);    /* malloc'd, args joined by spaces; NULL if gone */
int sup_pgid_alive(pid_t pgid);      /* some live process is in that group */
/* Waits until pid is gone or a zombie: 0, or -1 on timeout. */
int sup_wait_pid_dead(pid_t pid, int timeout_ms);

/* ---- an emperor seen from outside (sup_emperor.c) --------------------------------- */

/* Runs `emperorctl --control CTL ARGS...` (args NULL-terminated, 16 at most) with its
 * stdout and stderr in out_path (emptied first), for timeout_ms at most. Its exit
 * status (0..255), or -1 if it could not start, died of a signal or did not exit in
 * time (then killed); printed. Its output, malloc'd ("" if none), in *text if text is
 * not NULL (NULL if it could not start). */
int sup_emperorctl(const char *ctl, const char *const args[], const char *out_path,
		   int timeout_ms, char **text);

/* A TCP socket listening on a port, from /proc/net/tcp or tcp6. */
struct sup_listener {
	char local[64];        /* as the kernel writes it: "0100007F:1F90" is 127.0.0.1:8080 */
	unsigned long inode;   /* the same socket keeps it: /proc/PID/fd shows socket:[inode] */
};
/* How many TCP sockets (IPv4, then IPv6) listen on port; the first max in out. */
int sup_tcp_listeners(int port, struct sup_listener *out, int max);

/* ---- loopback networking ---------------------------------------------------------- */

int sup_free_port(void);             /* a port free on 127.0.0.1 right now */
/* A listening TCP socket (CLOEXEC) on host ("127.0.0.1", "::1") and port (0 = any);
 * the bound port in *port_out if not NULL. */
int sup_listen_tcp(const char *host, int port, int *port_out);
/* A vassal master's answer to request ("json", "text", "metrics") on its status socket
 * (@emperor-vassal/PID, vassal/status.h); malloc'd, NULL on failure (5 s at most). */
char *sup_master_status(pid_t master, const char *request);
/* The value of the first sample of text whose name and labels are exactly series
 * ("name{labels}"), or -1. */
double sup_metric(const char *text, const char *series);
int sup_listen_unix(const char *path); /* path may be "@name" (abstract) */
/* 0 once a connection to host:port succeeds. */
int sup_wait_port(const char *host, int port, int timeout_ms);
/* 0 if a connection to host:port is refused now (one attempt). */
int sup_port_refused(const char *host, int port, int timeout_ms);

struct sup_http_hdr {
	char *name;
	char *value;
};

struct sup_http {
	int status;
	char *head;                  /* the raw head, NUL-terminated */
	struct sup_http_hdr *hdrs;   /* parsed from a copy of the head */
	int n_hdrs;
	char *body;                  /* NUL-terminated */
	size_t body_len;
};

/* One GET with Connection: close. 0, or -1 on a connect/IO error or timeout. */
int sup_http_get(const char *host, int port, const char *path, struct sup_http *out, int timeout_ms);
int sup_http_get_unix(const char *sockpath, const char *path, struct sup_http *out, int timeout_ms);
/* A header's value (case-insensitive name), NULL if absent. */
const char *sup_http_header(const struct sup_http *r, const char *name);
void sup_http_fini(struct sup_http *r);

/* A client connection for keep-alive, pipelining and hand-made requests. */
struct sup_conn;
struct sup_conn *sup_conn_open(const char *host, int port, int timeout_ms);
struct sup_conn *sup_conn_open_unix(const char *sockpath, int timeout_ms);
/* GET path (HTTP/1.1, keep-alive) and read its response. */
int sup_conn_get(struct sup_conn *c, const char *path, struct sup_http *out, int timeout_ms);
int sup_conn_send(struct sup_conn *c, const void *buf, size_t len, int timeout_ms);
/* Reads one response (Content-Length or, without one, until EOF; so not after HEAD). */
int sup_conn_read_response(struct sup_conn *c, struct sup_http *out, int timeout_ms);
/* 0 once the peer has closed (EOF or reset) with no further data, -1 otherwise. */
int sup_conn_wait_closed(struct sup_conn *c, int timeout_ms);
/* 1 if a byte of response arrives within timeout_ms, 0 if none, -1 on error. */
int sup_conn_readable(struct sup_conn *c, int timeout_ms);
void sup_conn_close(struct sup_conn *c);
/* While on, this thread's sup_http_* and sup_conn_* calls do not print their failures
 * (a load thread expects some); errno still tells. */
void sup_net_quiet(int on);

/* ---- background load ------------------------------------------------------------ */

enum sup_load_mode {
	SUP_LOAD_NEW_CONN,   /* a new connection per request */
	SUP_LOAD_KEEPALIVE,  /* reuse one connection while the server keeps it */
};

#define SUP_LOAD_MAX_PIDS 256

struct sup_load_stats {
	long requests;       /* finished, whatever the outcome */
	long ok;             /* 200 */
	long non200;         /* any other status */
	long connect_errors; /* refused, reset during connect, timeout */
	long io_errors;      /* broken or short response on a fresh connection */
	long stale_retries;  /* keep-alive: closed between requests by the server, retried */
	int n_pids;          /* distinct X-Worker-Pid values seen */
	pid_t pids[SUP_LOAD_MAX_PIDS];
};

struct sup_load;
/* Issues GETs back to back from a thread until stopped (new connection each time). */
struct sup_load *sup_load_start(const char *host, int port, const char *path);
struct sup_load *sup_load_start_mode(const char *host, int port, const char *path,
				     enum sup_load_mode mode);
/* Copies the counters so far. */
void sup_load_snapshot(struct sup_load *l, struct sup_load_stats *out);
/* 0 once at least min_ok requests got 200 (counted since the start). */
int sup_load_wait_ok(struct sup_load *l, long min_ok, int timeout_ms);
/* Stops, joins and frees; the final counters in *out if not NULL. */
void sup_load_stop(struct sup_load *l, struct sup_load_stats *out);
void sup_load_print(const char *label, const struct sup_load_stats *s);

/* ---- a TCP proxy on loopback (sup_proxy.c), to cut a link ------------------------- */

struct sup_proxy;
/* Forwards connections to 127.0.0.1:target_port from a free port below 32768, in a
 * thread of its own; NULL on failure. */
struct sup_proxy *sup_proxy_start(int target_port);
int sup_proxy_port(const struct sup_proxy *p);
/* A partition: the connections open are held (nothing passes either way) and new ones
 * are accepted and held, so requests time out. */
void sup_proxy_cut(struct sup_proxy *p);
/* The link back: the held connections are closed, new ones forwarded. */
void sup_proxy_restore(struct sup_proxy *p);
void sup_proxy_stop(struct sup_proxy *p); /* joins the thread, closes every fd */

/* ---- etcd (sup_etcd.c) ------------------------------------------------------------ */

struct sup_etcd_opts {
	int members;                 /* 1 (default) or 3 */
	const char *cert, *key;      /* server certificate: client URLs become https */
	const char *cacert;          /* --trusted-ca-file */
	int client_cert_auth;        /* --client-cert-auth: clients need a certificate */
};

struct sup_etcd_member {
	char name[16];               /* e1, e2, e3 */
	int client_port, peer_port, metrics_port; /* metrics: plain HTTP /health, /metrics */
	char url[64];                /* the client URL */
	char *datadir, *logpath;
	struct sup_proc *proc;       /* NULL while killed */
};

struct sup_etcd {
	char *dir;                   /* temporary: data dirs and logs, removed at stop */
	int n;
	struct sup_etcd_member m[3];
	struct sup_etcd_opts opts;
	char *initial_cluster;
	const char *endpoints[3];    /* the members' client URLs */
};

/* Starts etcd (Debian's etcd-server) on free loopback ports below 32768 with a
 * temporary data dir; returns once every member's /health says true, NULL on failure
 * (nothing left running). */
struct sup_etcd *sup_etcd_start(const struct sup_etcd_opts *o);
int sup_etcd_healthy(struct sup_etcd *e, int i);
int sup_etcd_wait_healthy(struct sup_etcd *e, int i, int timeout_ms);
/* SIGKILL member i and reap it. */
int sup_etcd_kill(struct sup_etcd *e, int i);
/* Starts member i again on its ports and data dir; waits for /health if asked. */
int sup_etcd_restart(struct sup_etcd *e, int i, int wait_healthy);
/* The index of the member that leads now (its /metrics), -1 if none. */
int sup_etcd_leader(struct sup_etcd *e);
/* Runs etcdctl --endpoints=<member 0> args... to completion: 0 if it exited 0. */
int sup_etcd_ctl(struct sup_etcd *e, const char *const args[]);
/* Makes, with openssl, in dir: a CA (ca.crt, ca.key) and a server and a client
 * certificate signed by it (server.crt/.key, client.crt/.key; for IP 127.0.0.1 and
 * localhost). 0, or -1 (openssl's log tail printed). */
int sup_etcd_make_certs(const char *dir);
/* SIGTERM each member (SIGKILL if it lingers), reap, remove the directory, free. */
void sup_etcd_stop(struct sup_etcd *e);

#endif
