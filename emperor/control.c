/* control.c — the emperor's control socket: a unix stream socket (mode 0600; only
 * root and the emperor's own uid are served), one request line per connection,
 * answered with "OK\n" or "ERR reason\n" and then a body, and closed. emperorctl
 * (ctl/emperorctl.c) is a thin client of it; control_cmd.c runs the commands. This
 * file owns the clients, of this socket and of the --metrics listener
 * (control_http.c): the caps on how many at once (an answer, not a hang, over them),
 * reading the request, writing the answer, and each client's deadline. Nothing
 * blocks: every client has its own watchers. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control_int.h"
#include "emperor.h"
#include "etcd_status.h"
#include "log.h"
#include "peer.h"
#include "runpath.h"

/* ---- clients ------------------------------------------------------------------------- */

void ctl_client_free(struct client *cl)
{
	struct ev_loop *loop = cl->ctl->e->loop;

	ctl_page_unwatch(cl);
	if (cl->following)
		cl->ctl->n_followers--;
	ctl_fetch_free(cl);
	if (cl->cluster)
		etcd_status_cluster_cancel(cl->cluster);
	json_object_put(cl->masters);
	ev_io_stop(loop, &cl->io);
	ev_timer_stop(loop, &cl->timer);
	close(cl->fd);
	TAILQ_REMOVE(&cl->ctl->clients, cl, link);
	strbuf_free(&cl->out);
	strbuf_free(&cl->notes);
	strbuf_free(&cl->gathered);
	strv_free(cl->waiting_for);
	if (cl->http) {
		ctl_http_free(cl);
		cl->ctl->n_http--;
	} else {
		cl->ctl->n_clients--;
	}
	free(cl);
}

void ctl_answer(struct client *cl, bool ok, const char *err)
{
	struct strbuf head = { 0 };
	struct ev_loop *loop = cl->ctl->e->loop;

	if (cl->http)
		ctl_http_head(cl, ok, cl->notes.len + cl->out.len, &head);
	else if (ok)
		strbuf_printf(&head, "OK\n");
	else
		strbuf_printf(&head, "ERR %s\n", err);
	if (cl->notes.len)
		strbuf_append(&head, cl->notes.p, cl->notes.len);
	if (cl->out.len)
		strbuf_append(&head, cl->out.p, cl->out.len);
	strbuf_free(&cl->out);
	cl->out = head;
	cl->out_off = 0;
	cl->answering = true;
	cl->wait = WAIT_NONE;
	ev_io_stop(loop, &cl->io);
	ev_io_set(&cl->io, cl->fd, EV_WRITE);
	ev_io_start(loop, &cl->io);
	ev_timer_stop(loop, &cl->timer);
	ev_timer_set(&cl->timer, CTL_READ_TIMEOUT, 0);
	ev_timer_start(loop, &cl->timer);
}

/* A follower (logs -f) watches for its client's close, and for writability while it
 * has something to write; it has no deadline while it waits for lines. */
static void follow_watch(struct client *cl, int events)
{
	struct ev_loop *loop = cl->ctl->e->loop;

	ev_io_stop(loop, &cl->io);
	ev_io_set(&cl->io, cl->fd, events);
	ev_io_start(loop, &cl->io);
	if (!(events & EV_WRITE))
		ev_timer_stop(loop, &cl->timer);
}

void ctl_follow_wake(struct client *cl)
{
	if (cl->answering && !(cl->io.events & EV_WRITE))
		follow_watch(cl, EV_READ | EV_WRITE);
}

static void client_write(struct client *cl)
{
	ssize_t n = send(cl->fd, cl->out.p + cl->out_off, cl->out.len - cl->out_off,
			 MSG_DONTWAIT | MSG_NOSIGNAL);

	if (n > 0)
		cl->out_off += (size_t)n;
	if (n < 0 && errno != EAGAIN && errno != EINTR) {
		ctl_client_free(cl);
	} else if (cl->out_off >= cl->out.len && cl->following) {
		cl->out.len = cl->out_off = 0;
		follow_watch(cl, EV_READ);
	} else if (cl->out_off >= cl->out.len) {
		ctl_client_free(cl);
	}
}

/* A follower's client sent more, or closed: the latter ends it. */
static void follower_readable(struct client *cl)
{
	char discard[256];
	ssize_t n = recv(cl->fd, discard, sizeof discard, MSG_DONTWAIT);

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		ctl_client_free(cl);
}

/* The request line, read to its newline (a line that fills the buffer is taken as
 * it is). A NUL byte in it is answered at once. */
static void client_read_line(struct client *cl, ssize_t n)
{
	struct ev_loop *loop = cl->ctl->e->loop;

	if (memchr(cl->in + cl->in_len, '\0', (size_t)n)) {
		ev_io_stop(loop, &cl->io);
		ctl_answer(cl, false, "a NUL byte in the request");
		return;
	}
	cl->in_len += (size_t)n;
	cl->in[cl->in_len] = '\0';
	if (!strchr(cl->in, '\n') && cl->in_len < sizeof cl->in - 1)
		return;
	ev_io_stop(loop, &cl->io); /* one request per connection */
	ctl_dispatch(cl);
}

static void client_event(struct ev_loop *loop, ev_io *w, int revents)
{
	struct client *cl = container_of(w, struct client, io);
	ssize_t n;

	if ((cl->answering && cl->following && (revents & EV_READ)) || cl->wait == WAIT_CHANGE) {
		follower_readable(cl); /* a follower's or a held page's client: only its close */
		return;
	}
	if (cl->answering) {
		client_write(cl);
		return;
	}
	n = recv(cl->fd, cl->in + cl->in_len, sizeof cl->in - 1 - cl->in_len, MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		ctl_client_free(cl);
		return;
	}
	if (n < 0)
		return;
	if (!cl->http) {
		client_read_line(cl, n);
		return;
	}
	if (ctl_http_read(cl, cl->in, (size_t)n)) {
		ev_io_stop(loop, &cl->io); /* one request per connection */
		ctl_http_serve(cl);
	}
}

/* The client's deadline: to send its request, for the masters to answer, for the
 * vassals it waits for, or to take its answer. */
static void client_expired(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct client *cl = container_of(w, struct client, timer);

	(void)loop, (void)revents;
	if (ctl_fetch_pending(cl)) { /* some masters did not answer in time: use what came */
		ctl_fetch_cancel(cl);
		ctl_gathered(cl);
	} else if (cl->wait == WAIT_CHANGE) { /* a status page's hold ran out */
		ctl_page_expired(cl);
	} else if (cl->wait != WAIT_NONE) {
		ctl_answer(cl, false, "timed out waiting");
	} else {
		ctl_client_free(cl);
	}
}

/* ---- accepting, within the caps ---------------------------------------------------------- */

/* A refused connection, answered and shut for writing, kept until the client closes
 * its side (at most CTL_LINGER_TIMEOUT): closing with its request unread would
 * reset the connection, and a reset can destroy the answer before it is read. */
struct refusal {
	TAILQ_ENTRY(refusal) link;
	struct control *ctl;
	int fd;
	ev_io io;
	ev_timer timer;
};

static void refusal_free(struct refusal *r)
{
	ev_io_stop(r->ctl->e->loop, &r->io);
	ev_timer_stop(r->ctl->e->loop, &r->timer);
	close(r->fd);
	TAILQ_REMOVE(&r->ctl->refusals, r, link);
	r->ctl->n_refusals--;
	free(r);
}

static void refusal_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct refusal *r = container_of(w, struct refusal, io);
	char discard[2048];
	ssize_t n = recv(r->fd, discard, sizeof discard, MSG_DONTWAIT);

	(void)loop, (void)revents;
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		refusal_free(r);
}

static void refusal_expired(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	refusal_free(container_of(w, struct refusal, timer));
}

/* Says why before closing, so that the client can tell its user. Past
 * CTL_MAX_REFUSALS lingering at once, what the client sent so far is read and the
 * connection closed at once. */
static void refuse(struct control *ctl, int fd, const char *answer)
{
	struct refusal *r = NULL;
	char discard[2048];

	if (send(fd, answer, strlen(answer), MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
	    errno != EPIPE && errno != ECONNRESET && errno != EAGAIN)
		log_errno("control: send to a refused client");
	if (shutdown(fd, SHUT_WR) < 0 && errno != ENOTCONN)
		log_errno("control: shutdown of a refused client");
	if (ctl->n_refusals < CTL_MAX_REFUSALS && (r = calloc(1, sizeof *r))) {
		r->ctl = ctl;
		r->fd = fd;
		ev_io_init(&r->io, refusal_readable, fd, EV_READ);
		ev_io_start(ctl->e->loop, &r->io);
		ev_timer_init(&r->timer, refusal_expired, CTL_LINGER_TIMEOUT, 0);
		ev_timer_start(ctl->e->loop, &r->timer);
		TAILQ_INSERT_TAIL(&ctl->refusals, r, link);
		ctl->n_refusals++;
		return;
	}
	for (int i = 0; i < 8 && recv(fd, discard, sizeof discard, MSG_DONTWAIT) > 0; i++)
		;
	close(fd);
}

/* Over the cap: an answer, never a hang. Logged once per spell of refusals. */
static void refuse_busy(struct control *ctl, int fd, bool http)
{
	char why[96], answer[320];
	int cap = http ? CTL_MAX_HTTP_CLIENTS : CTL_MAX_CLIENTS;

	snprintf(why, sizeof why, "busy: %d %s clients already; try again", cap,
		 http ? "metrics" : "control");
	if (http)
		ctl_http_busy(why, answer, sizeof answer);
	else
		snprintf(answer, sizeof answer, "ERR %s\n", why);
	if (!ctl->full_logged)
		log_warn("control: %d %s clients at once, the cap: refusing more until one is done",
			 cap, http ? "--metrics" : "control-socket");
	ctl->full_logged = true;
	refuse(ctl, fd, answer);
}

static void client_new(struct control *ctl, int fd, bool http)
{
	struct client *cl = calloc(1, sizeof *cl);

	if (!cl || (http && ctl_http_init(cl) < 0)) {
		log_errno("control: a client");
		free(cl);
		close(fd);
		return;
	}
	cl->ctl = ctl;
	cl->fd = fd;
	TAILQ_INIT(&cl->fetches);
	ev_io_init(&cl->io, client_event, fd, EV_READ);
	ev_io_start(ctl->e->loop, &cl->io);
	ev_timer_init(&cl->timer, client_expired, CTL_READ_TIMEOUT, 0);
	ev_timer_start(ctl->e->loop, &cl->timer);
	TAILQ_INSERT_TAIL(&ctl->clients, cl, link);
	if (http)
		ctl->n_http++;
	else
		ctl->n_clients++;
}

void ctl_accept(struct control *ctl, int lfd, bool http)
{
	for (int i = 0; i < 32; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		struct ucred uc;
		if (fd < 0)
			return;
		if (!http && !peer_allowed(fd, &uc)) {
			log_warn("control: refused a client of uid %d (pid %d): only root and uid %d are served",
				 (int)uc.uid, (int)uc.pid, (int)getuid());
			refuse(ctl, fd, "ERR refused: only root and the emperor's own uid are served\n");
		} else if (http ? ctl->n_http >= CTL_MAX_HTTP_CLIENTS : ctl->n_clients >= CTL_MAX_CLIENTS) {
			refuse_busy(ctl, fd, http);
		} else {
			ctl->full_logged = false;
			client_new(ctl, fd, http);
		}
	}
}

static void control_ready(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop, (void)revents;
	ctl_accept(container_of(w, struct control, io), w->fd, false);
}

/* ---- the socket ------------------------------------------------------------------------ */

static int mkdir_parents(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int rc = mkdir(path, 0755);
		*p = '/';
		if (rc < 0 && errno != EEXIST)
			return -1;
	}
	return 0;
}

/* Binds path, unless another emperor answers there. */
static int bind_control(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0 || strlen(path) >= sizeof sun.sun_path)
		goto fail;
	strcpy(sun.sun_path, path);
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0) {
		log_warn("control: %s: another emperor answers there; no control socket", path);
		close(fd);
		return -1;
	}
	close(fd);
	unlink(path); /* a stale socket of a previous run */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	mode_t old = umask(0077);
	int rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sun, sizeof sun);
	umask(old);
	if (rc < 0 || chmod(path, 0600) < 0 || listen(fd, 64) < 0)
		goto fail;
	return fd;
fail:
	log_errno("control: %s", path);
	if (fd >= 0)
		close(fd);
	return -1;
}

int control_open(struct emperor *e)
{
	struct control *ctl = calloc(1, sizeof *ctl);

	if (!ctl)
		return -1;
	ctl->e = e;
	ctl->http_fd = -1;
	TAILQ_INIT(&ctl->clients);
	TAILQ_INIT(&ctl->refusals);
	if (e->opts.control_path)
		snprintf(ctl->path, sizeof ctl->path, "%s", e->opts.control_path);
	else
		runpath_control(e->dir, ctl->path, sizeof ctl->path);
	mkdir_parents(ctl->path);
	ctl->fd = bind_control(ctl->path);
	if (ctl->fd >= 0) {
		ev_io_init(&ctl->io, control_ready, ctl->fd, EV_READ);
		ev_io_start(e->loop, &ctl->io);
		log_info("control socket %s", ctl->path);
	}
	if (e->opts.metrics_addr)
		ctl_http_open(ctl, e->opts.metrics_addr);
	e->control = ctl;
	return 0;
}

void control_close(struct emperor *e)
{
	struct control *ctl = e->control;

	if (!ctl)
		return;
	while (!TAILQ_EMPTY(&ctl->clients))
		ctl_client_free(TAILQ_FIRST(&ctl->clients));
	while (!TAILQ_EMPTY(&ctl->refusals))
		refusal_free(TAILQ_FIRST(&ctl->refusals));
	if (ctl->fd >= 0) {
		ev_io_stop(e->loop, &ctl->io);
		close(ctl->fd);
		unlink(ctl->path);
	}
	ctl_http_close(ctl);
	ctl_page_close(ctl);
	free(ctl);
	e->control = NULL;
}
