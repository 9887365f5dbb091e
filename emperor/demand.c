/* demand.c — an on-demand vassal's listening sockets in the emperor (see demand.h).
 * Who owns them when: the emperor binds them at the vassal's start and watches them
 * (ev_io, level-triggered) while no master runs; the first readable one wakes the
 * vassal: every watcher stops and the fds go to the new master, which adopts them by
 * address exactly as after its own re-exec. The emperor keeps its copies open
 * meanwhile (the same open sockets, never a second bind), so the accept queue outlives
 * the master: a connection that comes while it stops waits there and wakes the next
 * one. The record's end closes them. An emperor upgrade hands them across
 * (EMPEROR_DEMAND_FDS): the new image's records take them by address.
 * Both sides set their sockets up with one function, vsock_adopt() (vassal/vsock.c):
 * here the given sockets are the held ones and an upgrade's, so a changed config
 * keeps what it still names, binds the new and closes the dropped. */
#include "demand.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "util.h"
#include "vsock.h"

#define HANDED_VAR DEMAND_HANDED_VAR

struct demand {
	struct ev_loop *loop;
	void (*on_wake)(void *arg);
	void *arg;
	struct cfg_socket *want;    /* what the config names (copies) */
	size_t n_want;
	struct vsock_table held;    /* what is bound; ios[i] watches held.v[i] */
	ev_io *ios;
	int *fds;                   /* held's fds and "a:b" for LISTEN_FDNAMES */
	char *names;
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
	for (size_t i = 0; d->ios && i < d->held.n; i++)
		ev_io_stop(d->loop, &d->ios[i]);
}

/* Sockets handed across an emperor upgrade (EMPEROR_DEMAND_FDS), taken by address by
 * the new image's records as they are set up; the rest are closed once every record
 * of its first scan has been (emperor.c). */
static struct vsock_given handed = { .label = "upgrade: handed across" };

void demand_handed_take(void)
{
	const char *s = getenv(HANDED_VAR);

	for (char *end; s && *s; s = *end ? end + 1 : end) {
		long fd = strtol(s, &end, 10);
		if (end == s || fd < 3 || fd > INT_MAX || (*end && *end != ',') ||
		    fd_set_cloexec((int)fd, 1) < 0) {
			log_warn("%s: '%s' is not a list of fds; the rest is ignored", HANDED_VAR, s);
			break;
		}
		vsock_given_add(&handed, (int)fd, NULL);
	}
	unsetenv(HANDED_VAR);
}

bool demand_handed_left(void)
{
	return handed.n > 0;
}

void demand_handed_close(void)
{
	vsock_given_close(&handed);
}

/* The wanted sockets handed across an upgrade join the given ones. */
static void take_handed(struct demand *d, struct vsock_given *given)
{
	for (size_t i = 0; i < d->n_want && handed.n; i++) {
		int fd = vsock_given_move(given, &handed, &d->want[i].addr, SOCK_STREAM);
		if (fd >= 0)
			log_info("on-demand: socket %s: kept %s across the upgrade (fd %d)",
				 d->want[i].name, d->want[i].addr.text, fd);
	}
}

/* held becomes the wanted set: the held sockets whose address is still wanted are
 * kept, then those an upgrade handed across are taken, the others are bound; the held
 * ones no longer wanted are closed (vsock_adopt). */
static int rebind(struct demand *d)
{
	struct vsock_given given = { .label = "on-demand", .ours = true };
	struct vsock_table held = { 0 };
	int rc;

	if (vsock_given_take_table(&given, &d->held) < 0)
		return -1;
	take_handed(d, &given);
	rc = vsock_adopt(&held, d->want, d->n_want, NULL, &given);
	d->held = held;
	for (size_t i = 0; i < held.n; i++)
		if (!held.v[i].inherited)
			log_info("on-demand: socket %s: listening on %s (fd %d)", held.v[i].name,
				 held.v[i].addr.text, held.v[i].fd);
	return rc;
}

int demand_hold(struct demand *d)
{
	int rc;

	demand_disarm(d);
	rc = rebind(d);
	free(d->ios), free(d->fds), free(d->names);
	d->fds = NULL, d->names = NULL;
	d->ios = calloc(d->held.n + 1, sizeof *d->ios);
	if (!d->ios || vsock_worker_fds(&d->held, &d->fds, &d->names) < 0) {
		log_errno("on-demand: sockets");
		return -1;
	}
	for (size_t i = 0; i < d->held.n; i++) {
		ev_io_init(&d->ios[i], readable, d->held.v[i].fd, EV_READ);
		d->ios[i].data = d;
	}
	return rc;
}

int demand_arm(struct demand *d)
{
	int rc = demand_hold(d);

	for (size_t i = 0; d->ios && i < d->held.n; i++)
		ev_io_start(d->loop, &d->ios[i]);
	return rc;
}

int demand_keep_across_exec(const struct demand *d, bool keep, struct strbuf *list)
{
	int rc = 0;

	for (size_t i = 0; i < d->held.n; i++) {
		if (fd_set_cloexec(d->held.v[i].fd, !keep) < 0)
			rc = -1;
		if (keep && list)
			strbuf_printf(list, "%s%d", list->len ? "," : "", d->held.v[i].fd);
	}
	return rc;
}

size_t demand_fds(const struct demand *d, const int **fds, const char **names)
{
	*fds = d->fds;
	*names = d->names ? d->names : "";
	return d->fds ? d->held.n : 0;
}

void demand_free(struct demand *d)
{
	if (!d)
		return;
	demand_disarm(d);
	vsock_close_all(&d->held, true);
	sockets_free(d->want, d->n_want);
	free(d->fds);
	free(d->ios);
	free(d->names);
	free(d);
}
