/* demand.c — an on-demand vassal's listening sockets in the emperor (see demand.h).
 * Who owns them when: the emperor binds them at the vassal's start and watches them
 * (ev_io, level-triggered) while no master runs; the first readable one wakes the
 * vassal: every watcher stops and the fds go to the new master, which adopts them by
 * address (vsock.c) exactly as after its own re-exec. The emperor keeps its copies
 * open meanwhile (the same open sockets, never a second bind), so the accept queue
 * outlives the master: a connection that comes while it stops waits there and wakes
 * the next one. The record's end closes them. An emperor upgrade hands them across
 * (EMPEROR_DEMAND_FDS): the new image's records take them by address. */
#include "demand.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "parse.h"
#include "util.h"
#include "vsock.h"

#define HANDED_VAR DEMAND_HANDED_VAR

struct demand {
	struct ev_loop *loop;
	void (*on_wake)(void *arg);
	void *arg;
	struct cfg_socket *want;    /* what the config names (copies) */
	size_t n_want;
	struct cfg_socket *held;    /* what is bound, fds[i] for held[i] (copies) */
	int *fds;
	ev_io *ios;
	char *names;                /* "a:b" for LISTEN_FDNAMES */
	size_t n_held;
};

static void sockets_free(struct cfg_socket *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].owner);
		free(v[i].group);
	}
	free(v);
}

static int socket_copy(struct cfg_socket *to, const struct cfg_socket *from)
{
	*to = *from;
	to->name = strdup(from->name);
	to->owner = from->owner ? strdup(from->owner) : NULL;
	to->group = from->group ? strdup(from->group) : NULL;
	return to->name && (to->owner || !from->owner) && (to->group || !from->group) ? 0 : -1;
}

struct demand *demand_new(struct ev_loop *loop, void (*on_wake)(void *arg), void *arg)
{
	struct demand *d = calloc(1, sizeof *d);

	if (d) {
		d->loop = loop;
		d->on_wake = on_wake;
		d->arg = arg;
	}
	return d;
}

int demand_want(struct demand *d, const struct config *cfg)
{
	struct cfg_socket *want = calloc(cfg->n_sockets + 1, sizeof *want);
	size_t n = 0;

	if (!want)
		return -1;
	for (; n < cfg->n_sockets; n++)
		if (socket_copy(&want[n], &cfg->sockets[n]) < 0) {
			sockets_free(want, n + 1);
			return -1;
		}
	sockets_free(d->want, d->n_want);
	d->want = want;
	d->n_want = n;
	return 0;
}

static void readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct demand *d = w->data;

	(void)loop, (void)revents;
	demand_disarm(d);
	d->on_wake(d->arg);
}

void demand_disarm(struct demand *d)
{
	for (size_t i = 0; i < d->n_held; i++)
		ev_io_stop(d->loop, &d->ios[i]);
}

/* Closes the held sockets no wanted one has the address of (taken[i]: kept). */
static void close_dropped(struct demand *d, const bool *taken)
{
	for (size_t i = 0; i < d->n_held; i++) {
		if (taken[i])
			continue;
		log_info("on-demand: socket %s: closing %s (no longer in the config)", d->held[i].name,
			 d->held[i].addr.text);
		close(d->fds[i]);
		vsock_unlink(d->held[i].name, &d->held[i].addr);
	}
}

/* Sockets handed across an emperor upgrade (EMPEROR_DEMAND_FDS), taken by address by
 * the new image's records until its first scan is done; the rest are closed then. */
static int *handed;
static size_t n_handed;

void demand_handed_take(void)
{
	const char *s = getenv(HANDED_VAR);
	size_t cap = 0;

	for (const char *p = s; p && *p; p++)
		cap += *p == ',';
	if (!s || !*s || !(handed = calloc(cap + 1, sizeof *handed))) {
		unsetenv(HANDED_VAR);
		return;
	}
	for (char *end; *s && n_handed <= cap; s = *end ? end + 1 : end) {
		long fd = strtol(s, &end, 10);
		if (end == s || fd < 3 || fd > INT_MAX || fd_set_cloexec((int)fd, 1) < 0) {
			log_warn("%s: '%s' is not a list of fds; the rest is ignored", HANDED_VAR, s);
			break;
		}
		handed[n_handed++] = (int)fd;
	}
	unsetenv(HANDED_VAR);
}

void demand_handed_close(void)
{
	for (size_t i = 0; i < n_handed; i++)
		if (handed[i] >= 0)
			close(handed[i]);
	free(handed);
	handed = NULL;
	n_handed = 0;
}

static int take_handed(const struct cfg_addr *addr)
{
	for (size_t i = 0; i < n_handed; i++)
		if (handed[i] >= 0 && vsock_bound_to(handed[i], addr)) {
			int fd = handed[i];
			handed[i] = -1;
			return fd;
		}
	return -1;
}

/* The held fd bound to addr, or -1; taken marks it. */
static int take_held(const struct demand *d, const struct cfg_addr *addr, bool *taken)
{
	for (size_t i = 0; i < d->n_held; i++)
		if (!taken[i] && vsock_bound_to(d->fds[i], addr)) {
			taken[i] = true;
			return d->fds[i];
		}
	return -1;
}

static void names_build(struct demand *d)
{
	size_t len = 1, used = 0;

	for (size_t i = 0; i < d->n_held; i++)
		len += strlen(d->held[i].name) + 1;
	free(d->names);
	if (!(d->names = malloc(len)))
		return;
	d->names[0] = '\0';
	for (size_t i = 0; i < d->n_held; i++)
		used += (size_t)snprintf(d->names + used, len - used, "%s%s", i ? ":" : "",
					 d->held[i].name);
}

/* The wanted sockets bound (kept or new) into fresh arrays; the old ones closed. */
static int rebind(struct demand *d, struct cfg_socket *held, int *fds)
{
	bool *taken = calloc(d->n_held + 1, sizeof *taken);
	size_t n = 0;
	int rc = 0;

	if (!taken)
		return -1;
	for (size_t i = 0; i < d->n_want; i++)
		fds[i] = take_held(d, &d->want[i].addr, taken);
	close_dropped(d, taken);
	free(taken);
	for (size_t i = 0; i < d->n_want; i++) {
		if (fds[i] < 0 && (fds[i] = take_handed(&d->want[i].addr)) >= 0)
			log_info("on-demand: socket %s: kept %s across the upgrade (fd %d)",
				 d->want[i].name, d->want[i].addr.text, fds[i]);
		if (fds[i] < 0 && (fds[i] = vsock_bind(&d->want[i])) >= 0)
			log_info("on-demand: socket %s: listening on %s (fd %d)", d->want[i].name,
				 d->want[i].addr.text, fds[i]);
		if (fds[i] < 0 || socket_copy(&held[n], &d->want[i]) < 0) {
			if (fds[i] >= 0)
				close(fds[i]);
			free(held[n].name), free(held[n].owner), free(held[n].group);
			rc = -1;
			continue;
		}
		fds[n++] = fds[i];
	}
	sockets_free(d->held, d->n_held);
	d->held = held;
	d->n_held = n;
	return rc;
}

int demand_hold(struct demand *d)
{
	struct cfg_socket *held = calloc(d->n_want + 1, sizeof *held);
	int *fds = calloc(d->n_want + 1, sizeof *fds);
	ev_io *ios = calloc(d->n_want + 1, sizeof *ios);
	int rc;

	if (!held || !fds || !ios) {
		free(held), free(fds), free(ios);
		log_errno("on-demand: sockets");
		return -1;
	}
	demand_disarm(d);
	rc = rebind(d, held, fds);
	free(d->fds);
	free(d->ios);
	d->fds = fds;
	d->ios = ios;
	names_build(d);
	for (size_t i = 0; i < d->n_held; i++) {
		ev_io_init(&d->ios[i], readable, d->fds[i], EV_READ);
		d->ios[i].data = d;
	}
	return rc == 0 && d->names ? 0 : -1;
}

int demand_arm(struct demand *d)
{
	int rc = demand_hold(d);

	for (size_t i = 0; i < d->n_held; i++)
		ev_io_start(d->loop, &d->ios[i]);
	return rc;
}

int demand_keep_across_exec(const struct demand *d, bool keep, struct strbuf *list)
{
	int rc = 0;

	for (size_t i = 0; i < d->n_held; i++) {
		if (fd_set_cloexec(d->fds[i], !keep) < 0)
			rc = -1;
		if (keep && list)
			strbuf_printf(list, "%s%d", list->len ? "," : "", d->fds[i]);
	}
	return rc;
}

size_t demand_fds(const struct demand *d, const int **fds, const char **names)
{
	*fds = d->fds;
	*names = d->names ? d->names : "";
	return d->n_held;
}

void demand_free(struct demand *d)
{
	if (!d)
		return;
	demand_disarm(d);
	for (size_t i = 0; i < d->n_held; i++) {
		close(d->fds[i]);
		vsock_unlink(d->held[i].name, &d->held[i].addr);
	}
	sockets_free(d->held, d->n_held);
	sockets_free(d->want, d->n_want);
	free(d->fds);
	free(d->ios);
	free(d->names);
	free(d);
}
