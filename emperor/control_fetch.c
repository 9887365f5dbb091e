/* control_fetch.c — queries to the masters' status sockets (status_proto.h) on behalf
 * of a client: CTL_FETCH_FANOUT at a time, the rest queued, all within one deadline
 * (CTL_FETCH_TIMEOUT, the client's timer). A master is asked only once the listener
 * of its socket is known to be the master itself (SO_PEERCRED). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "control_int.h"
#include "emperor.h"
#include "log.h"
#include "peer.h"
#include "status_proto.h"

static void fetch_next(struct client *cl);

static void fetch_free(struct fetch *f)
{
	ev_io_stop(f->cl->ctl->e->loop, &f->io);
	close(f->fd);
	TAILQ_REMOVE(&f->cl->fetches, f, link);
	strbuf_free(&f->reply);
	free(f->vassal);
	free(f);
}

/* What a master answered joins the client's gathering, checked: JSON is checked when
 * the answer is written (control_cmd.c); the rest here. */
static void fetch_keep(struct fetch *f)
{
	struct client *cl = f->cl;
	int dropped;

	if (!f->reply.len)
		return;
	if (cl->page) {
		ctl_page_keep(cl, f->vassal, &f->reply);
	} else if (strcmp(cl->fetch_request, "metrics") == 0) {
		dropped = ctl_render_master_samples(f->reply.p, f->reply.len, f->vassal, &cl->gathered);
		if (dropped)
			log_warn("control: %s's master answered %d lines that are not samples of its own: "
				 "left out", f->vassal, dropped);
	} else if (strcmp(cl->fetch_request, "text") == 0) {
		ctl_render_master_text(f->reply.p, f->reply.len, &cl->gathered);
	} else {
		strbuf_append(&cl->gathered, f->reply.p, f->reply.len);
	}
}

static void fetch_event(struct ev_loop *loop, ev_io *w, int revents)
{
	struct fetch *f = container_of(w, struct fetch, io);
	struct client *cl = f->cl;
	char buf[8192];
	ssize_t n;

	(void)loop, (void)revents;
	if (f->req_off < strlen(f->request)) {
		n = send(f->fd, f->request + f->req_off, strlen(f->request) - f->req_off,
			 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0)
			f->req_off += (size_t)n;
		if (n < 0 && errno != EAGAIN && errno != EINTR && errno != ENOTCONN)
			goto done;
		if (f->req_off == strlen(f->request)) {
			ev_io_stop(cl->ctl->e->loop, &f->io);
			ev_io_set(&f->io, f->fd, EV_READ);
			ev_io_start(cl->ctl->e->loop, &f->io);
		}
		return;
	}
	n = recv(f->fd, buf, sizeof buf, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		strbuf_append(&f->reply, buf, (size_t)n);
		return;
	}
done:
	fetch_keep(f);
	fetch_free(f);
	fetch_next(cl);
	if (TAILQ_EMPTY(&cl->fetches))
		ctl_gathered(cl);
}

/* Connects to the status socket of master. Its name is in the abstract namespace,
 * which anyone may take: the listener must be the master itself (SO_PEERCRED). */
static int fetch_connect(pid_t master)
{
	struct sockaddr_un sun;
	socklen_t len = status_sockaddr(master, &sun);
	char addr[sizeof sun.sun_path];
	struct ucred uc;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, len) < 0) {
		close(fd);
		return -1;
	}
	if (!peer_is(fd, master, &uc)) {
		status_address(master, addr, sizeof addr);
		log_warn("control: %s is held by pid %d (uid %d), not by its master %d: not asked",
			 addr, (int)uc.pid, (int)uc.uid, (int)master);
		close(fd);
		return -1;
	}
	return fd;
}

static int fetch_start(struct client *cl, const struct fetch_target *t)
{
	struct fetch *f;
	int fd = fetch_connect(t->pid);

	if (fd < 0)
		return -1;
	if (!(f = calloc(1, sizeof *f)) || !(f->vassal = strdup(t->vassal))) {
		free(f);
		close(fd);
		return -1;
	}
	f->cl = cl;
	f->fd = fd;
	snprintf(f->request, sizeof f->request, "%s\n", cl->fetch_request);
	ev_io_init(&f->io, fetch_event, f->fd, EV_WRITE);
	ev_io_start(cl->ctl->e->loop, &f->io);
	TAILQ_INSERT_TAIL(&cl->fetches, f, link);
	return 0;
}

/* Starts queued queries until CTL_FETCH_FANOUT are in flight or none is left. */
static void fetch_next(struct client *cl)
{
	int running = 0;
	struct fetch *f;

	TAILQ_FOREACH(f, &cl->fetches, link)
		running++;
	while (running < CTL_FETCH_FANOUT && cl->next_fetch < cl->n_to_fetch)
		if (fetch_start(cl, &cl->to_fetch[cl->next_fetch++]) == 0)
			running++;
}

/* Queues a query of v's master (request: json, text or metrics). */
void ctl_fetch_queue(struct client *cl, const struct vassal *v, const char *request)
{
	struct fetch_target *grown = realloc(cl->to_fetch, (cl->n_to_fetch + 1) * sizeof *grown);
	char *name = strdup(v->name);

	if (!grown || !name) {
		if (grown)
			cl->to_fetch = grown;
		free(name);
		return;
	}
	cl->to_fetch = grown;
	cl->to_fetch[cl->n_to_fetch++] = (struct fetch_target){ .pid = v->child.pid, .vassal = name };
	snprintf(cl->fetch_request, sizeof cl->fetch_request, "%s", request);
}

/* Starts the queued queries; the masters have CTL_FETCH_TIMEOUT in all to answer
 * (control.c); none asked: the answer goes now. */
void ctl_fetch_start(struct client *cl)
{
	struct ev_loop *loop = cl->ctl->e->loop;

	fetch_next(cl);
	if (TAILQ_EMPTY(&cl->fetches)) {
		ctl_gathered(cl);
		return;
	}
	ev_timer_stop(loop, &cl->timer);
	ev_timer_set(&cl->timer, CTL_FETCH_TIMEOUT, 0);
	ev_timer_start(loop, &cl->timer);
}

bool ctl_fetch_pending(const struct client *cl)
{
	return !TAILQ_EMPTY(&cl->fetches) || cl->next_fetch < cl->n_to_fetch;
}

void ctl_fetch_cancel(struct client *cl)
{
	cl->next_fetch = cl->n_to_fetch;
	while (!TAILQ_EMPTY(&cl->fetches))
		fetch_free(TAILQ_FIRST(&cl->fetches));
}

void ctl_fetch_free(struct client *cl)
{
	ctl_fetch_cancel(cl);
	for (size_t i = 0; i < cl->n_to_fetch; i++)
		free(cl->to_fetch[i].vassal);
	free(cl->to_fetch);
	cl->to_fetch = NULL;
	cl->n_to_fetch = cl->next_fetch = 0;
}
