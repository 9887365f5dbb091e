/* strays.c — what a subreaper (the emperor, a master) does about processes it adopted
 * that are not in its child set: orphans of a killed child and their descendants are
 * killed, walking only our own subtree (/proc/PID/task/TID/children). A sweep that
 * found strays is repeated after every exit reaped, until one finds none. */
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

#define STRAYS_MAX 4096

/* Appends the children of pid (every thread's /proc/PID/task/TID/children) to out;
 * returns the new count, or -1 if the kernel does not list children. */
static int children_of(pid_t pid, pid_t *out, int n, int max)
{
	char path[320], buf[8192];
	struct dirent *de;
	DIR *tasks;

	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	if (!(tasks = opendir(path)))
		return errno == ENOENT ? n : -1; /* gone already: no children to list */
	while ((de = readdir(tasks)) != NULL && n < max) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/%d/task/%s/children", (int)pid, de->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			if (errno != ENOENT)
				continue;
			closedir(tasks);
			return -1; /* no CONFIG_PROC_CHILDREN */
		}
		ssize_t len = read(fd, buf, sizeof buf - 1);
		close(fd);
		buf[len > 0 ? len : 0] = '\0';
		for (char *p = buf, *end; n < max; p = end) {
			long child = strtol(p, &end, 10);
			if (end == p)
				break;
			out[n++] = (pid_t)child;
		}
	}
	closedir(tasks);
	return n;
}

/* Dead already, waiting to be reaped: a stray killed by an earlier sweep. Killing it
 * again would only log it twice; the sweep still runs again once it is reaped. */
static bool is_zombie(pid_t pid)
{
	char path[64], buf[512], *close_paren;
	ssize_t len;
	int fd;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	len = read(fd, buf, sizeof buf - 1);
	close(fd);
	buf[len > 0 ? len : 0] = '\0';
	close_paren = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
	return close_paren && close_paren[1] == ' ' && close_paren[2] == 'Z';
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
 * finds none. */
void child_strays_reaped(struct ev_loop *loop, ev_child *w, int revents)
{
	struct child_set *set = container_of(w, struct child_set, strays_watcher);

	(void)loop, (void)revents;
	child_set_kill_strays(set);
}

/* Our children that are not in the set (orphans we adopted), then, level by level,
 * their descendants: an orphan still dying (a worker whose master was just killed)
 * hands its own children (a setsid'd sleeper) to us only later, so they go now with
 * it. Only our own subtree is read: the cost does not grow with the host's
 * processes. */
int child_set_kill_strays(struct child_set *set)
{
	static pid_t found[STRAYS_MAX];
	size_t n_known;
	pid_t *known = set_pids(set, &n_known);
	int n = children_of(getpid(), found, 0, STRAYS_MAX), strays = 0;

	if (!known || n < 0) {
		free(known);
		return 0;
	}
	int dying = 0;
	for (int i = 0; i < n; i++) { /* keep the live strays among our children */
		if (bsearch(&found[i], known, n_known, sizeof *known, pid_cmp))
			continue;
		if (is_zombie(found[i]))
			dying++; /* its children may reach us only now: sweep again after it */
		else
			found[strays++] = found[i];
	}
	free(known);
	int orphans = strays;
	for (int i = 0; i < strays; i++) { /* each stray's children are strays too */
		int more = children_of(found[i], found, strays, STRAYS_MAX);
		if (more > strays)
			strays = more;
	}
	for (int i = 0; i < strays; i++) {
		kill(-found[i], SIGKILL); /* its group too: a setsid'd stray leads one */
		if (kill(found[i], SIGKILL) == 0)
			log_warn("killed pid %d: %s", (int)found[i], i < orphans ? "an orphan we "
				 "adopted, not one of our children" : "a descendant of an orphan we adopted");
	}
	if (strays > 0 || dying > 0)
		ev_child_start(set->loop, &set->strays_watcher);
	else
		ev_child_stop(set->loop, &set->strays_watcher);
	return strays;
}
