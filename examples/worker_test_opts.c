/* worker_test_opts.c — hello-worker's misbehaviours, for the tests of the master
 * (see worker_test_opts.h): --ignore-stop, --fork-sleeper, --exit-after,
 * --fail-start, --fail-if-id, --no-watchdog, --grow-on-request, --log-lines,
 * --starve-at-idle. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "worker_test_opts.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hello_worker.h"
#include "log.h"

enum { O_IGNORE_STOP = TEST_OPT_FIRST, O_FORK_SLEEPER, O_EXIT_AFTER, O_FAIL_START, O_FAIL_IF_ID,
       O_NO_WATCHDOG, O_GROW, O_LOG_LINES, O_STARVE_AT_IDLE };

const struct option test_longopts[] = {
	{ "ignore-stop", no_argument, NULL, O_IGNORE_STOP },
	{ "fork-sleeper", no_argument, NULL, O_FORK_SLEEPER },
	{ "exit-after", required_argument, NULL, O_EXIT_AFTER },
	{ "fail-start", no_argument, NULL, O_FAIL_START },
	{ "fail-if-id", required_argument, NULL, O_FAIL_IF_ID },
	{ "no-watchdog", no_argument, NULL, O_NO_WATCHDOG },
	{ "grow-on-request", required_argument, NULL, O_GROW },
	{ "log-lines", required_argument, NULL, O_LOG_LINES },
	{ "starve-at-idle", no_argument, NULL, O_STARVE_AT_IDLE },
	{ NULL, 0, NULL, 0 },
};

void test_opts_usage(FILE *f)
{
	fprintf(f,
		"for tests of the master:\n"
		"  --ignore-stop       log and ignore SIGTERM/SIGHUP (tests of the mercy kill)\n"
		"  --fork-sleeper      fork a child that sleeps forever in our process group\n"
		"  --exit-after MS     exit 1 after MS milliseconds (crash-loop tests)\n"
		"  --fail-start        exit 1 at once (crash-loop tests)\n"
		"  --fail-if-id N      exit 1 at once if VASSAL_WORKER_ID is N (one bad worker)\n"
		"  --no-watchdog       never send WATCHDOG=1 (tests of workers.watchdog)\n"
		"  --grow-on-request MB  allocate and touch MB MiB per request, never freed\n"
		"                      (tests of workers.max-rss)\n"
		"  --log-lines N       log N lines \"line ID SEQ\", about 5000 a second, then\n"
		"                      \"lines done N\" (tests of log rotation)\n"
		"  --starve-at-idle    do not finish starting while our CPU policy is SCHED_IDLE,\n"
		"                      as on a machine too busy to give an idle start any CPU\n"
		"                      (60 s at most; tests of start-priority)\n");
}

static long parse_number(const char *opt, const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		die(EXIT_USAGE, "%s: \"%s\" is not a number from %ld to %ld", opt, s, min, max);
	return v;
}

int test_opts_parse(struct test_opts *t, int ch, const char *arg)
{
	switch (ch) {
	case O_IGNORE_STOP: t->ignore_stop = 1; return 1;
	case O_FORK_SLEEPER: t->fork_sleeper = 1; return 1;
	case O_EXIT_AFTER: t->exit_after_ms = parse_number("--exit-after", arg, 0, 24L * 3600 * 1000); return 1;
	case O_FAIL_START: t->fail_start = 1; return 1;
	case O_FAIL_IF_ID: t->fail_if_id = parse_number("--fail-if-id", arg, 1, 1024); return 1;
	case O_NO_WATCHDOG: t->no_watchdog = 1; return 1;
	case O_GROW: t->grow_mb = parse_number("--grow-on-request", arg, 1, 1024); return 1;
	case O_LOG_LINES: t->log_lines = parse_number("--log-lines", arg, 1, 100000000L); return 1;
	case O_STARVE_AT_IDLE: t->starve_at_idle = 1; return 1;
	default: return 0;
	}
}

/* The sleeper holds none of our sockets and, like us, ignores the stop signals when
 * --ignore-stop is given: only a kill of the process group ends it. */
static _Noreturn void sleeper_main(const struct test_opts *t)
{
	if (close_range(LISTEN_FDS_START, ~0U, 0) < 0)
		log_errno("sleeper: close_range");
	if (t->ignore_stop && (signal(SIGTERM, SIG_IGN) == SIG_ERR || signal(SIGHUP, SIG_IGN) == SIG_ERR))
		log_errno("sleeper: signal");
	log_info("sleeper: holds none of the sockets, sleeping");
	for (;;)
		pause();
}

void test_opts_fail_early(const struct test_opts *t, const char *worker_id)
{
	if (t->fail_start) {
		log_warn("--fail-start: exiting 1");
		exit(1);
	}
	if (t->fail_if_id && strtol(worker_id, NULL, 10) == t->fail_if_id) {
		log_warn("--fail-if-id %ld: exiting 1", t->fail_if_id);
		exit(1);
	}
}

/* --starve-at-idle: the master gives a starved start the normal policy back; until
 * it does (60 s at most) we make no progress, whatever the machine's load. */
static void starve_at_idle(void)
{
	const struct timespec tick = { .tv_sec = 0, .tv_nsec = 10 * 1000 * 1000 };
	int policy = 0;

	for (int i = 0; i < 6000 && (policy = sched_getscheduler(0)) == SCHED_IDLE; i++)
		(void)nanosleep(&tick, NULL);
	if (policy < 0)
		log_fatal("sched_getscheduler: %s", strerror(errno));
	log_info("--starve-at-idle: %s", policy == SCHED_IDLE ? "still SCHED_IDLE after 60 s, starting"
							      : "not SCHED_IDLE, starting");
}

void test_opts_before_loop(struct test_opts *t)
{
	if (t->starve_at_idle)
		starve_at_idle();
	if (!t->fork_sleeper)
		return;
	/* forked before the loop exists, so the sleeper inherits no libev state */
	t->sleeper_pid = fork();
	if (t->sleeper_pid < 0)
		log_fatal("fork (--fork-sleeper): %s", strerror(errno));
	if (t->sleeper_pid == 0)
		sleeper_main(t);
	log_info("forked sleeper %d in process group %d", (int)t->sleeper_pid, (int)getpgrp());
}

static void sleeper_cb(struct ev_loop *loop, ev_child *ch, int revents)
{
	(void)revents;
	log_info("sleeper %d ended (wait status %d)", ch->rpid, ch->rstatus);
	ev_child_stop(loop, ch);
}

static void exit_timer_cb(struct ev_loop *loop, ev_timer *timer, int revents)
{
	struct test_opts *t = CONTAINER_OF(timer, struct test_opts, exit_timer);

	(void)loop, (void)revents;
	log_warn("--exit-after %ld ms: exiting 1", t->exit_after_ms);
	exit(1);
}

/* 50 lines every 10 ms. */
static void lines_timer_cb(struct ev_loop *loop, ev_timer *timer, int revents)
{
	struct test_opts *t = CONTAINER_OF(timer, struct test_opts, lines_timer);
	const char *id = getenv("VASSAL_WORKER_ID");

	(void)revents;
	for (int i = 0; i < 50 && t->logged < t->log_lines; i++)
		log_info("line %s %ld", id ? id : "-", ++t->logged);
	if (t->logged < t->log_lines)
		return;
	log_info("lines done %ld", t->logged);
	ev_timer_stop(loop, timer);
}

void test_opts_start(struct test_opts *t, struct ev_loop *loop)
{
	if (t->log_lines) {
		ev_timer_init(&t->lines_timer, lines_timer_cb, 0.01, 0.01);
		ev_timer_start(loop, &t->lines_timer);
	}
	if (t->sleeper_pid > 0) {
		ev_child_init(&t->sleeper, sleeper_cb, t->sleeper_pid, 0);
		ev_child_start(loop, &t->sleeper);
	}
	if (t->exit_after_ms) {
		ev_timer_init(&t->exit_timer, exit_timer_cb, (double)t->exit_after_ms / 1000., 0.);
		ev_timer_start(loop, &t->exit_timer);
	}
}

int test_opts_ignore_stop(const struct test_opts *t, int sig)
{
	if (t->ignore_stop)
		log_info("SIG%s ignored (--ignore-stop)", sigabbrev_np(sig));
	return t->ignore_stop;
}

/* --grow-on-request's blocks, each starting with the previous one: reachable from
 * here to the end, not a leak. */
static void *grown;

void test_opts_on_request(struct test_opts *t)
{
	size_t len = (size_t)t->grow_mb << 20;
	char *p;

	if (!t->grow_mb)
		return;
	p = malloc(len);
	if (!p) {
		log_warn("--grow-on-request: out of memory");
		return;
	}
	memset(p, 1, len); /* touched: resident, counted in the RSS; kept reachable */
	memcpy(p, &grown, sizeof grown);
	grown = p;
	t->grown_mb += t->grow_mb;
	log_info("--grow-on-request: %ld MiB grown", t->grown_mb);
}
