/* strays.c — what a subreaper (the emperor, a master) does about processes it adopted
 * that are not in its child set: orphans of a killed child and their descendants are
 * killed, walking only our own subtree (/proc/PID/task/TID/children). A sweep that
 * found strays is repeated after the exits reaped since (a burst of them shares one
 * sweep, 20 ms later), until one finds none. Any number of children is read whole. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child_internal.h"
#include "log.h"
#include "util.h"

#define STRAYS_MAX 100000  /* descendants of strays killed by one sweep, at most */
#define STRAYS_COALESCE 0.02 /* exits within this long share one sweep */

/* A list of pids that grows as needed: the emperor may have 10,000 children. */
struct pid_list {
	pid_t *v;
	size_t n, cap;
};

static int pid_list_add(struct pid_list *l, pid_t pid)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		pid_t *v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = pid;
	return 0;
}

/* Appends the pids listed in one children file, read to its end in chunks: a number
 * cut by a chunk's end is carried over, never taken for another pid. */
static int read_children_file(int fd, struct pid_list *out)
{
	char buf[4096];
	long cur = 0;
	bool in_number = false;
	ssize_t len;

	while ((len = read(fd, buf, sizeof buf)) != 0) {
		if (len < 0 && errno == EINTR)
			continue;
		if (len < 0)
			return -1;
		for (ssize_t i = 0; i < len; i++) {
			if (buf[i] >= '0' && buf[i] <= '9') {
				cur = cur * 10 + (buf[i] - '0');
				in_number = true;
			} else if (in_number) {
				if (pid_list_add(out, (pid_t)cur) < 0)
					return -1;
				cur = 0, in_number = false;
			}
		}
	}
	return in_number ? pid_list_add(out, (pid_t)cur) : 0;
}

/* Appends the children of pid (every thread's /proc/PID/task/TID/children) to out;
 * returns 0, or -1 if the kernel does not list children or memory ran out. */
static int children_of(pid_t pid, struct pid_list *out)
{
	char path[320];
	struct dirent *de;
	DIR *tasks;
	int rc = 0;

	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	if (!(tasks = opendir(path)))
		return errno == ENOENT ? 0 : -1; /* gone already: no children to list */
	while (rc == 0 && (de = readdir(tasks)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/%d/task/%s/children", (int)pid, de->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			if (errno != ENOENT || faccessat(dirfd(tasks), de->d_name, F_OK, 0) < 0)
				continue; /* that thread just ended */
			rc = -1; /* the thread is there but not the file: no CONFIG_PROC_CHILDREN */
			break;
		}
		rc = read_children_file(fd, out) < 0 ? -1 : 0;
		close(fd);
	}
	closedir(tasks);
	return rc;
}

/* Dead already, waiting to be reaped: a stray killed by an earlier sweep. Killing it
 * again would only log it twice; the sweep still runs again once it is reaped. */
static bool is_zombie(pid_t pid)
{
	char buf[512];
	const char *st = proc_stat_fields((int)pid, buf, sizeof buf);

	return st && st[0] == 'Z';
}

static int pid_cmp(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

/* The set's pids, sorted for bsearch: the emperor's set may hold a thousand. */
static pid_t *set_pids(const struct child_set *set, size_t *n)
{
	const struct child *c;
	size_t k = 0;
	pid_t *v;

	TAILQ_FOREACH(c, &set->children, link)
		k++;
	v = calloc(k ? k : 1, sizeof *v);
	k = 0;
	TAILQ_FOREACH(c, &set->children, link)
		if (v && c->pid > 0)
			v[k++] = c->pid;
	if (v)
		qsort(v, k, sizeof *v, pid_cmp);
	*n = k;
	return v;
}

/* A stray that dies between the read of our children and the read of its own hands
 * its children to us unseen by that sweep. Its children are ours before we reap it,
 * so every exit reaped after a sweep that found strays sweeps again, until a sweep
 * finds none; a burst of exits (a thousand vassals stopping) makes one sweep, not one
 * each: a sweep reads all our children. */
void child_strays_reaped(struct ev_loop *loop, ev_child *w, int revents)
{
	struct child_set *set = container_of(w, struct child_set, strays_watcher);

	(void)loop, (void)revents;
	child_set_sweep_soon(set);
}

void child_strays_due(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct child_set *set = container_of(w, struct child_set, sweep_timer);

	(void)loop, (void)revents;
	child_set_kill_strays(set);
}

void child_set_sweep_soon(struct child_set *set)
{
	if (ev_is_active(&set->sweep_timer))
		return;
	ev_timer_set(&set->sweep_timer, STRAYS_COALESCE, 0);
	ev_timer_start(set->loop, &set->sweep_timer);
}

/* Our children that are not in the set (orphans we adopted), then, level by level,
 * their descendants: an orphan still dying (a worker whose master was just killed)
 * hands its own children (a setsid'd sleeper) to us only later, so they go now with
 * it. Only our own subtree is read: the cost does not grow with the host's
 * processes. */
int child_set_kill_strays(struct child_set *set)
{
	struct pid_list found = { 0 };
	size_t n_known, strays = 0;
	pid_t *known = set_pids(set, &n_known);
	int dying = 0;

	ev_timer_stop(set->loop, &set->sweep_timer);
	if (!known || children_of(getpid(), &found) < 0) {
		free(known);
		free(found.v);
		return 0;
	}
	for (size_t i = 0; i < found.n; i++) { /* keep the live strays among our children */
		if (bsearch(&found.v[i], known, n_known, sizeof *known, pid_cmp))
			continue;
		if (is_zombie(found.v[i]))
			dying++; /* its children may reach us only now: sweep again after it */
		else
			found.v[strays++] = found.v[i];
	}
	free(known);
	found.n = strays;
	size_t orphans = strays;
	for (size_t i = 0; i < found.n && found.n < STRAYS_MAX; i++) /* their children too */
		children_of(found.v[i], &found);
	for (size_t i = 0; i < found.n; i++) {
		kill(-found.v[i], SIGKILL); /* its group too: a setsid'd stray leads one */
		if (kill(found.v[i], SIGKILL) == 0)
			log_warn("killed pid %d: %s", (int)found.v[i], i < orphans ? "an orphan we "
				 "adopted, not one of our children" : "a descendant of an orphan we adopted");
	}
	strays = found.n;
	free(found.v);
	if (strays > 0 || dying > 0)
		ev_child_start(set->loop, &set->strays_watcher);
	else
		ev_child_stop(set->loop, &set->strays_watcher);
	return (int)strays;
}
