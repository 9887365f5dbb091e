/* worker_test_opts.h — the options of hello-worker that only tests need, to play a
 * badly behaved worker (worker_test_opts.c). A worker written from hello-worker.c
 * leaves this file out. */
#ifndef WORKER_TEST_OPTS_H
#define WORKER_TEST_OPTS_H

#include <ev.h>
#include <getopt.h>
#include <stdio.h>
#include <sys/types.h>

struct test_opts {
	int ignore_stop;      /* SIGTERM/SIGHUP are logged and ignored */
	int fork_sleeper;     /* a child in our process group that pause()s forever */
	long exit_after_ms;   /* exit 1 after this long; 0 = never */
	int fail_start;       /* exit 1 at once */
	long fail_if_id;      /* exit 1 at once when VASSAL_WORKER_ID is this; 0 = never */
	int no_watchdog;      /* never send WATCHDOG=1 */
	long grow_mb;         /* each request allocates and touches this many MiB, kept */
	long grown_mb;
	pid_t sleeper_pid;    /* --fork-sleeper, else 0 */
	ev_child sleeper;
	ev_timer exit_timer;
	long log_lines;       /* --log-lines: write this many numbered lines, ~5000/s */
	long logged;
	ev_timer lines_timer;
	int starve_at_idle;   /* no start while SCHED_IDLE */
};

/* getopt_long entries (val from TEST_OPT_FIRST on), ended by a zeroed one. */
#define TEST_OPT_FIRST 0x1000
extern const struct option test_longopts[];
/* An option of test_longopts: 1 if ch was one (taken), 0 if not. Usage errors exit 2. */
int test_opts_parse(struct test_opts *t, int ch, const char *arg);
void test_opts_usage(FILE *f);
/* At once: --fail-start, and --fail-if-id for this worker id, exit 1. */
void test_opts_fail_early(const struct test_opts *t, const char *worker_id);
/* The sockets taken, before the loop: --starve-at-idle waits, --fork-sleeper forks. */
void test_opts_before_loop(struct test_opts *t);
/* In the loop: watch the sleeper, arm --exit-after. */
void test_opts_start(struct test_opts *t, struct ev_loop *loop);
/* A request is read in full: --grow-on-request. */
void test_opts_on_request(struct test_opts *t);
/* True if a stop signal is to be ignored (and says so). */
int test_opts_ignore_stop(const struct test_opts *t, int sig);

#endif
