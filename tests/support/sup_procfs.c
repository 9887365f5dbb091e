/* sup_procfs.c — what /proc says about processes: state, parent and group from
 * /proc/PID/stat, open fds, wake-ups (voluntary context switches) and whether it sleeps
 * in its event loop, command line, the processes carrying our test tag in their
 * environment, and the descendants of a process (by walking ppid links). A process
 * that vanishes while being read is simply skipped. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "support.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct pstat {
	char state;
	pid_t ppid;
	pid_t pgid;
};

/* Reads up to size-1 bytes of a /proc file; the byte count, or -1 if unreadable. */
static ssize_t read_proc(pid_t pid, const char *file, char *buf, size_t size)
{
	char path[64];
	FILE *f;
	size_t n;

	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
	f = fopen(path, "re");
	if (!f)
		return -1;
	n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	fclose(f);
	return (ssize_t)n;
}

/* "pid (comm) S ppid pgrp ...": comm may hold spaces and parentheses. */
static int read_stat(pid_t pid, struct pstat *st)
{
	char buf[1024], *close_paren;
	int ppid, pgid;

	if (read_proc(pid, "stat", buf, sizeof buf) <= 0)
		return -1;
	close_paren = strrchr(buf, ')');
	if (!close_paren || sscanf(close_paren + 1, " %c %d %d", &st->state, &ppid, &pgid) != 3)
		return -1;
	st->ppid = ppid;
	st->pgid = pgid;
	return 0;
}

char sup_pid_state(pid_t pid)
{
	struct pstat st;

	return read_stat(pid, &st) == 0 ? st.state : 0;
}

int sup_pid_alive(pid_t pid)
{
	char state = sup_pid_state(pid);

	return state != 0 && state != 'Z' && state != 'X';
}

pid_t sup_pid_ppid(pid_t pid)
{
	struct pstat st;

	return read_stat(pid, &st) == 0 ? st.ppid : -1;
}

pid_t sup_pid_pgid(pid_t pid)
{
	struct pstat st;

	return read_stat(pid, &st) == 0 ? st.pgid : -1;
}

int sup_wait_pid_dead(pid_t pid, int timeout_ms)
{
	long long deadline = sup_now_ms() + timeout_ms;

	while (sup_pid_alive(pid)) {
		if (sup_now_ms() >= deadline) {
			fprintf(stderr, "sup: pid %d still alive after %d ms\n", (int)pid, timeout_ms);
			return -1;
		}
		sup_poll_pause();
	}
	return 0;
}

long sup_pid_wakeups(pid_t pid)
{
	static const char key[] = "\nvoluntary_ctxt_switches:";
	char path[64], *text, *at;
	long n = -1;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	text = sup_read_file(path);
	if (text && (at = strstr(text, key)))
		n = strtol(at + strlen(key), NULL, 10);
	free(text);
	return n;
}

/* The system calls in which an event loop sleeps. */
static int is_event_wait(long nr)
{
	static const long waits[] = {
#ifdef SYS_select
		SYS_select,
#endif
#ifdef SYS_poll
		SYS_poll,
#endif
#ifdef SYS_epoll_wait
		SYS_epoll_wait,
#endif
#ifdef SYS_epoll_pwait2
		SYS_epoll_pwait2,
#endif
		SYS_pselect6, SYS_ppoll, SYS_epoll_pwait,
	};

	for (size_t i = 0; i < sizeof waits / sizeof waits[0]; i++)
		if (waits[i] == nr)
			return 1;
	return 0;
}

/* Asleep in its event loop: state S, and /proc/PID/syscall names a select, poll or
 * epoll wait (a process we may not trace shows "S" alone). Once so, its next
 * voluntary switch needs an event: counting wake-ups from here counts only those. */
int sup_wait_pid_asleep(pid_t pid, int timeout_ms)
{
	long long deadline = sup_now_ms() + timeout_ms;
	char buf[256];

	for (;;) {
		if (sup_pid_state(pid) == 'S') {
			ssize_t n = read_proc(pid, "syscall", buf, sizeof buf);

			if (n < 0 || (isdigit((unsigned char)buf[0]) && is_event_wait(strtol(buf, NULL, 10))))
				return 0;
		}
		if (!sup_pid_alive(pid) || sup_now_ms() >= deadline) {
			fprintf(stderr, "sup: pid %d not asleep in an event wait after %d ms (state %c)\n",
				(int)pid, timeout_ms, sup_pid_state(pid) ? sup_pid_state(pid) : '-');
			return -1;
		}
		sup_poll_pause();
	}
}

char *sup_pid_cmdline(pid_t pid)
{
	char buf[1024];
	ssize_t n = read_proc(pid, "cmdline", buf, sizeof buf);

	if (n < 0)
		return NULL;
	for (ssize_t i = 0; i + 1 < n; i++)
		buf[i] = buf[i] ? buf[i] : ' ';
	return strdup(buf);
}

int sup_count_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Calls fn for every pid in /proc; stops early when fn returns nonzero. */
static int for_each_pid(int (*fn)(pid_t pid, void *arg), void *arg)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int stop = 0;

	if (!d) {
		fprintf(stderr, "sup: opendir(/proc): %s\n", strerror(errno));
		return -1;
	}
	while (!stop && (e = readdir(d)))
		if (isdigit((unsigned char)e->d_name[0]))
			stop = fn((pid_t)atoi(e->d_name), arg);
	closedir(d);
	return 0;
}

/* ---- tagged processes ------------------------------------------------------------- */

struct pid_set {
	pid_t *pids;
	int n, max;
	const char *needle; /* "EMPEROR_TEST_TAG=<tag>" */
	size_t needle_len;
};

/* Whether the NUL-separated environment holds exactly the entry needle. */
static int environ_has(const char *env, size_t len, const char *needle, size_t needle_len)
{
	for (size_t off = 0; off < len; off += strlen(env + off) + 1)
		if (len - off >= needle_len && memcmp(env + off, needle, needle_len + 1) == 0)
			return 1;
	return 0;
}

static int collect_tagged(pid_t pid, void *arg)
{
	struct pid_set *set = arg;
	static char env[65536];
	ssize_t n;

	if (pid == getpid() || !sup_pid_alive(pid))
		return 0;
	n = read_proc(pid, "environ", env, sizeof env);
	if (n > 0 && environ_has(env, (size_t)n, set->needle, set->needle_len) && set->n < set->max)
		set->pids[set->n++] = pid;
	return 0;
}

int sup_tagged_pids(pid_t *out, int max)
{
	char needle[128];
	struct pid_set set = {.pids = out, .max = max, .needle = needle};

	snprintf(needle, sizeof needle, "EMPEROR_TEST_TAG=%s", sup_tag());
	set.needle_len = strlen(needle);
	if (for_each_pid(collect_tagged, &set) < 0)
		return -1;
	return set.n;
}

/* ---- descendants and groups --------------------------------------------------------- */

struct ppid_table {
	struct {
		pid_t pid, ppid;
	} *e;
	int n, cap;
};

static int collect_ppid(pid_t pid, void *arg)
{
	struct ppid_table *t = arg;
	struct pstat st;

	if (read_stat(pid, &st) < 0)
		return 0;
	if (t->n == t->cap) {
		int cap = t->cap ? t->cap * 2 : 1024;
		void *grown = realloc(t->e, (size_t)cap * sizeof *t->e);

		if (!grown)
			return 1;
		t->e = grown;
		t->cap = cap;
	}
	t->e[t->n].pid = pid;
	t->e[t->n++].ppid = st.ppid;
	return 0;
}

int sup_descendants(pid_t root, pid_t *out, int max)
{
	struct ppid_table t = {0};
	int n = 0, next = 0;

	if (for_each_pid(collect_ppid, &t) < 0)
		return -1;
	/* Breadth first, out[] being the queue: children of root, then theirs... */
	for (pid_t parent = root;; parent = out[next++]) {
		for (int i = 0; i < t.n && n < max; i++)
			if (t.e[i].ppid == parent && t.e[i].pid != root)
				out[n++] = t.e[i].pid;
		if (next >= n)
			break;
	}
	free(t.e);
	return n;
}

struct group_probe {
	pid_t pgid;
	int found;
};

static int probe_group(pid_t pid, void *arg)
{
	struct group_probe *g = arg;
	struct pstat st;

	if (read_stat(pid, &st) == 0 && st.pgid == g->pgid && st.state != 'Z' && st.state != 'X')
		g->found = 1;
	return g->found;
}

int sup_pgid_alive(pid_t pgid)
{
	struct group_probe g = {.pgid = pgid};

	for_each_pid(probe_group, &g);
	return g.found;
}
