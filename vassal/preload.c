/* preload.c — the workers' templates (workers.preload; see preload.h). It owns the
 * template processes (one per generation that still needs one), their control
 * sockets, the queue of fork requests each one has, and the notifications that arrive
 * from a forked worker before its pid is known. The worker's policy stays in
 * workers.c: it asks here for a fork and hears back through workers_forked() or
 * workers_fork_failed().
 *
 * The races, and how each ends:
 * - the worker speaks (READY=1) before the template's answer: its messages are kept
 *   (STASH_MAX, the oldest dropped) and replayed once its pid is known;
 * - the worker dies before the answer: libev reaps it (it waits for any pid) and its
 *   status is lost; the answer then names a pid that is not our child any more
 *   (waitid ECHILD): the worker failed ("exited before its pid was known");
 * - the template dies: answers it wrote are read first, then every request still
 *   queued fails (each worker respawns with its backoff, from the template that
 *   replaces this one); running workers are not touched (their own process groups);
 * - the worker record is freed while its fork is outstanding (a stop, a trim): the
 *   answer's pid is SIGKILLed. */
#include "preload.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "procs.h"
#include "reload.h"
#include "util.h"
#include "workers.h"

#define STASH_MAX 32
#define LINE_MAX_LEN 256

struct template {
	struct child child;         /* first: kind KIND_TEMPLATE */
	struct master *m;
	unsigned generation;        /* the generation whose config it loaded */
	bool retire;                /* stopped for good: freed at its exit */
	bool ready;                 /* said "ready": requests are sent */
	bool exiting;               /* its exit is being handled: freed there, not by retire() */
	int ctl;                    /* our end of the control socket, -1 without a process */
	ev_io ctl_io;
	char in[LINE_MAX_LEN];      /* a partial answer line */
	size_t in_len;
	struct relay_pipe out;      /* its stdout and stderr (its workers have their own) */
	ev_timer ready_timer;       /* workers.ready-timeout for "ready" */
	struct worker **q;          /* [0, sent): asked, in order; [sent, n): not yet asked;
				     * an asked entry whose worker was freed is NULL */
	size_t n, sent, cap;
	TAILQ_ENTRY(template) link;
};

struct stashed {
	pid_t pid;                  /* 0: free */
	char msg[LINE_MAX_LEN];
};

struct preload {
	TAILQ_HEAD(, template) templates;
	struct stashed stash[STASH_MAX];
	unsigned stash_next;
};

static void template_start(struct template *t);

static struct preload *preload_of(struct master *m)
{
	if (!m->preload && (m->preload = calloc(1, sizeof *m->preload)))
		TAILQ_INIT(&m->preload->templates);
	return m->preload;
}

static struct template *current(const struct master *m)
{
	struct template *t;

	if (!m->preload)
		return NULL;
	TAILQ_FOREACH(t, &m->preload->templates, link)
		if (t->generation == m->generation && !t->retire)
			return t;
	return NULL;
}

static void template_free(struct template *t)
{
	struct master *m = t->m;

	ev_timer_stop(m->loop, &t->ready_timer);
	if (t->ctl >= 0) {
		ev_io_stop(m->loop, &t->ctl_io);
		close(t->ctl);
	}
	relay_pipe_close(&t->out);
	TAILQ_REMOVE(&m->preload->templates, t, link);
	child_fini(&t->child);
	free(t->q);
	free(t);
}

/* Protocol violation or a write that cannot go: the template is killed; its exit
 * fails what it was asked. */
static void template_broken(struct template *t, const char *why)
{
	log_warn("%s (pid %d): %s: killing it", t->child.name, (int)t->child.pid, why);
	child_kill(&t->child);
}

/* One request, with fd attached as SCM_RIGHTS. */
static ssize_t send_request(int ctl, const char *line, size_t len, int fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} c;
	struct iovec iov = { .iov_base = (void *)line, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;
	ssize_t n;

	memset(&c, 0, sizeof c);
	msg.msg_control = c.buf;
	msg.msg_controllen = sizeof c.buf;
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof fd);
	do
		n = sendmsg(ctl, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n;
}

/* "fork ID\n" for each queued worker, once the template is ready. Each request carries
 * exactly one descriptor (SCM_RIGHTS): the write end of the worker's own output pipe,
 * for its stdout and stderr, so that its lines are relayed whole whatever the other
 * workers write, as an exec'd worker's are. A template that reads with plain read(2)
 * drops it (the kernel closes it) and its workers write to its own pipe instead. No
 * pipe to attach (out of descriptors): the template is killed, as when it cannot be
 * written to; its queued workers respawn with their backoff. */
static void send_pending(struct template *t)
{
	char line[32];
	int len, out, err;
	ssize_t sent;

	while (t->ready && t->ctl >= 0 && t->sent < t->n) {
		struct worker *w = t->q[t->sent];
		len = snprintf(line, sizeof line, "fork %d\n", w->id);
		out = workers_output_pipe(t->m, &w->out);
		if (out < 0) {
			template_broken(t, "no output pipe for a worker");
			return;
		}
		sent = send_request(t->ctl, line, (size_t)len, out);
		err = errno;
		close(out);
		if (sent != len) {
			template_broken(t, sent < 0 && err == EAGAIN ? "does not read its requests"
								   : "cannot write a request");
			return;
		}
		t->sent++;
	}
}

static void replay_stash(struct master *m, pid_t pid)
{
	char msg[LINE_MAX_LEN];

	for (unsigned i = 0; i < STASH_MAX; i++) {
		unsigned k = (m->preload->stash_next + i) % STASH_MAX; /* oldest first */
		if (m->preload->stash[k].pid != pid)
			continue;
		memcpy(msg, m->preload->stash[k].msg, sizeof msg);
		m->preload->stash[k].pid = 0;
		workers_notify(&m->notify, pid, msg);
	}
}

/* The parent of pid from /proc/PID/stat, or -1. */
static pid_t parent_of(pid_t pid)
{
	char buf[512];
	const char *st = proc_stat_fields((int)pid, buf, sizeof buf);
	int ppid = -1;

	if (!st || sscanf(st, "%*c %d", &ppid) != 1)
		return -1;
	return (pid_t)ppid;
}

/* "forked ID PID": the worker is the master's child now, unless it is gone already.
 * A pid alive but not ours is refused; killed only if it is the template's own child
 * (a pid from the template is never trusted to name a process of someone else). */
static void answer_forked(struct template *t, struct worker *w, pid_t pid)
{
	siginfo_t si = { 0 };

	if (pid == getpid() || waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
		bool alive = kill(pid, 0) == 0, its_own = alive && parent_of(pid) == t->child.pid;
		if (alive)
			log_warn("%s: pid %d is not the master's child: a template must fork twice "
				 "and reap the middle process before it answers%s", t->child.name,
				 (int)pid, its_own ? "; killed" : "");
		if (its_own)
			kill(pid, SIGKILL);
		if (w)
			workers_fork_failed(w, alive ? "was not handed over by its template"
						     : "exited before its pid was known");
		return;
	}
	if (!w) { /* freed meanwhile: nobody wants it */
		log_info("%s: pid %d forked for a worker gone meanwhile: killed", t->child.name,
			 (int)pid);
		kill(pid, SIGKILL); /* reaped by libev's wait for any pid */
		return;
	}
	/* Its own process group, so its group's SIGKILL is its own; EACCES/ESRCH/EPERM:
	 * it did so itself already (the protocol asks for it), or it is gone. */
	(void)setpgid(pid, pid);
	workers_forked(w, pid);
	replay_stash(t->m, pid);
}

static int parse_answer(struct template *t, const char *line)
{
	char word[16], why[LINE_MAX_LEN];
	int id, pid, n;
	struct worker *w;

	if (strcmp(line, "ready") == 0) {
		if (t->ready)
			return -1;
		t->ready = true;
		ev_timer_stop(t->m->loop, &t->ready_timer);
		child_set_ready(&t->child);
		log_info("%s (pid %d) ready in %.0f ms", t->child.name, (int)t->child.pid,
			 (ev_now(t->m->loop) - t->child.started_at) * 1000);
		send_pending(t);
		return 0;
	}
	if (sscanf(line, "%15s %d%n", word, &id, &n) != 2 || t->sent == 0)
		return -1;
	w = t->q[0];
	if (w && w->id != id)
		return -1;
	memmove(t->q, t->q + 1, (t->n - 1) * sizeof *t->q);
	t->n--, t->sent--;
	if (strcmp(word, "forked") == 0 && sscanf(line + n, "%d", &pid) == 1 && pid > 1) {
		answer_forked(t, w, (pid_t)pid);
		return 0;
	}
	if (strcmp(word, "failed") != 0)
		return -1;
	snprintf(why, sizeof why, "was not forked by its template:%s", line + n);
	if (w)
		workers_fork_failed(w, why);
	return 0;
}

/* Reads what the template wrote and acts on each whole line. 0 at EAGAIN, -1 at EOF
 * or an error (the io is then stopped: its exit follows). */
static int read_answers(struct template *t)
{
	for (;;) {
		ssize_t got = read(t->ctl, t->in + t->in_len, sizeof t->in - 1 - t->in_len);
		char *nl;

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && errno == EAGAIN)
			return 0;
		if (got <= 0) {
			ev_io_stop(t->m->loop, &t->ctl_io);
			return -1;
		}
		t->in_len += (size_t)got;
		t->in[t->in_len] = '\0';
		while ((nl = strchr(t->in, '\n'))) {
			*nl = '\0';
			if (parse_answer(t, t->in) < 0) {
				template_broken(t, "a line that breaks the protocol");
				ev_io_stop(t->m->loop, &t->ctl_io);
				return -1;
			}
			t->in_len -= (size_t)(nl + 1 - t->in);
			memmove(t->in, nl + 1, t->in_len + 1);
		}
		if (t->in_len >= sizeof t->in - 1) {
			template_broken(t, "a line too long");
			ev_io_stop(t->m->loop, &t->ctl_io);
			return -1;
		}
	}
}

static void ctl_readable(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop, (void)revents;
	read_answers(container_of(io, struct template, ctl_io));
}

static void ready_timer_fired(struct ev_loop *loop, ev_timer *timer, int revents)
{
	struct template *t = container_of(timer, struct template, ready_timer);

	(void)loop, (void)revents;
	log_warn("%s (pid %d) not ready after %.1fs: stopping it", t->child.name,
		 (int)t->child.pid, t->m->cfg->workers.ready_timeout);
	child_curse(&t->child, t->child.stop_signal, t->child.mercy);
}

/* Every request it had fails (its queue is emptied first: a failure may act on
 * templates, e.g. a failed overlap adopting the previous one). */
static void fail_queue(struct template *t, const char *why)
{
	struct worker **q = t->q;
	size_t n = t->n;

	t->q = NULL;
	t->n = t->sent = t->cap = 0;
	for (size_t i = 0; i < n; i++)
		if (q[i])
			workers_fork_failed(q[i], why);
	free(q);
}

static void template_exited(struct child *c, int status)
{
	struct template *t = (struct template *)c;
	struct master *m = t->m;
	bool tearing_down = m->child_hooks.tearing_down(m);

	t->exiting = true; /* what follows may retire it (a failed overlap): freed below */
	if (t->ctl >= 0) {
		read_answers(t); /* what it answered before it died */
		ev_io_stop(m->loop, &t->ctl_io);
		close(t->ctl);
		t->ctl = -1;
	}
	ev_timer_stop(m->loop, &t->ready_timer);
	relay_pipe_close(&t->out);
	t->ready = false;
	procs_log_exit(c, status);
	fail_queue(t, "was not forked: its template exited");
	t->exiting = false;
	if (tearing_down || t->retire || t->generation != m->generation) {
		template_free(t);
		if (tearing_down)
			m->child_hooks.gone(m);
		return;
	}
	procs_respawn_later(c); /* live workers run on; new forks wait for the new one */
}

static void template_respawn_due(struct child *c)
{
	struct template *t = (struct template *)c;
	struct master *m = t->m;

	if (m->child_hooks.tearing_down(m) || t->retire || t->generation != m->generation) {
		bool tearing_down = m->child_hooks.tearing_down(m);
		template_free(t);
		if (tearing_down)
			m->child_hooks.gone(m);
		return;
	}
	template_start(t);
}

/* The workers' env and sockets, VASSAL_WORKER_ID=0, and the control socket after the
 * sockets, named by EMPEROR_PRELOAD_FD. */
static int template_spawn(struct template *t, int child_end)
{
	struct master *m = t->m;
	const struct cfg_workers *cw = &m->cfg->workers;
	char **env = workers_env(m, 0), *names = NULL, num[16];
	int *socks = NULL, *fds = NULL, n = (int)m->socks.n_workers, rc = -1;

	snprintf(num, sizeof num, "%d", 3 + n);
	env = env ? env_set(env, "EMPEROR_PRELOAD_FD", num) : NULL;
	if (env && vsock_worker_fds(&m->socks, &socks, &names) == 0 &&
	    (fds = calloc((size_t)n + 1, sizeof *fds))) {
		memcpy(fds, socks, (size_t)n * sizeof *fds);
		fds[n] = child_end;
		struct child_exec x = {
			.argv = cw->prog.argv, .env = env, .cwd = cw->prog.cwd, .fds = fds,
			.n_fds = n + 1, .fdnames = names, .n_listen_fds = n,
			.out_fd = workers_output_pipe(m, &t->out), .die_with_parent = true,
		};
		rc = child_spawn(&t->child, &x);
		if (x.out_fd >= 0)
			close(x.out_fd);
	} else {
		log_errno("%s: not started: out of memory", t->child.name);
	}
	strv_free(env);
	free(socks);
	free(fds);
	free(names);
	return rc;
}

static void template_start(struct template *t)
{
	struct master *m = t->m;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		log_errno("%s: socketpair", t->child.name);
		procs_respawn_later(&t->child);
		return;
	}
	if (template_spawn(t, sv[1]) < 0) {
		close(sv[0]);
		close(sv[1]);
		if (!child_running(&t->child))
			procs_respawn_later(&t->child);
		return;
	}
	close(sv[1]);
	if (fd_set_nonblock(sv[0], 1) < 0)
		log_errno("%s: control socket: O_NONBLOCK", t->child.name);
	t->ctl = sv[0];
	t->in_len = 0;
	t->ready = false;
	ev_io_init(&t->ctl_io, ctl_readable, t->ctl, EV_READ);
	ev_io_start(m->loop, &t->ctl_io);
	ev_timer_set(&t->ready_timer, m->cfg->workers.ready_timeout, 0);
	ev_timer_start(m->loop, &t->ready_timer);
	log_info("%s started (pid %d)", t->child.name, (int)t->child.pid);
}

static struct template *template_new(struct master *m)
{
	struct preload *p = preload_of(m);
	struct template *t = p ? calloc(1, sizeof *t) : NULL;
	const struct cfg_workers *cw = &m->cfg->workers;
	char name[40];

	if (!t)
		return NULL;
	snprintf(name, sizeof name, "template g%u", m->generation);
	child_init(&t->child, &m->children, KIND_TEMPLATE, name);
	t->m = m;
	t->generation = m->generation;
	t->ctl = -1;
	t->child.on_exit = template_exited;
	t->child.on_respawn = template_respawn_due;
	t->child.stop_signal = cw->prog.stop_signal;
	t->child.mercy = cw->prog.reload_mercy;
	t->child.backoff_min = cw->respawn_min;
	t->child.backoff_max = cw->respawn_max;
	relay_pipe_init(&t->out);
	ev_timer_init(&t->ready_timer, ready_timer_fired, 0, 0);
	TAILQ_INSERT_TAIL(&p->templates, t, link);
	template_start(t);
	return t;
}

int preload_fork(struct master *m, struct worker *w)
{
	struct template *t = current(m);

	if (!t && !(t = template_new(m)))
		return -1;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		struct worker **q = realloc(t->q, cap * sizeof *q);
		if (!q)
			return -1;
		t->q = q;
		t->cap = cap;
	}
	t->q[t->n++] = w;
	send_pending(t);
	return 0;
}

void preload_forget(struct master *m, const struct worker *w)
{
	struct template *t;

	if (!m->preload)
		return;
	TAILQ_FOREACH(t, &m->preload->templates, link)
		for (size_t i = 0; i < t->n; i++) {
			if (t->q[i] != w)
				continue;
			if (i < t->sent) {
				t->q[i] = NULL;
			} else {
				memmove(t->q + i, t->q + i + 1, (t->n - i - 1) * sizeof *t->q);
				t->n--;
			}
			return;
		}
}

bool preload_stash(struct master *m, pid_t sender, const char *msg)
{
	struct template *t;
	struct stashed *s;

	if (!m->preload)
		return false;
	TAILQ_FOREACH(t, &m->preload->templates, link)
		if (t->sent > 0)
			break;
	if (!t)
		return false;
	s = &m->preload->stash[m->preload->stash_next];
	m->preload->stash_next = (m->preload->stash_next + 1) % STASH_MAX;
	s->pid = sender;
	snprintf(s->msg, sizeof s->msg, "%s", msg);
	return true;
}

/* Stops t for good; one with no process is freed at once. */
static void retire(struct template *t)
{
	t->retire = true;
	if (t->exiting)
		return;
	if (child_running(&t->child)) {
		if (t->child.state != CHILD_CURSED)
			child_curse(&t->child, t->child.stop_signal, t->child.mercy);
		return;
	}
	child_cancel_respawn(&t->child);
	fail_queue(t, "was not forked: its template was stopped");
	template_free(t);
}

void preload_adopt(struct master *m)
{
	struct template *t, *prev = NULL, *failed = current(m);

	if (!m->preload)
		return;
	TAILQ_FOREACH(t, &m->preload->templates, link)
		if (t != failed && !t->retire && (!prev || t->generation > prev->generation))
			prev = t;
	if (prev)
		prev->generation = m->generation;
	if (failed)
		retire(failed);
}

static bool older_worker_alive(struct master *m)
{
	struct child *c;

	TAILQ_FOREACH(c, &m->children.children, link) {
		struct worker *w = (struct worker *)c;
		if (c->kind == KIND_WORKER && w->generation != m->generation &&
		    (child_running(c) || c->state == CHILD_REQUESTED))
			return true;
	}
	return false;
}

void preload_gc(struct master *m)
{
	struct template *t, *next;

	if (!m->preload || older_worker_alive(m))
		return;
	for (t = TAILQ_FIRST(&m->preload->templates); t; t = next) {
		next = TAILQ_NEXT(t, link);
		if (t->generation != m->generation && !t->retire) {
			log_info("%s: its generation's workers are gone: stopping it", t->child.name);
			retire(t);
		}
	}
}

void preload_free(struct master *m)
{
	if (!m->preload)
		return;
	while (!TAILQ_EMPTY(&m->preload->templates))
		template_free(TAILQ_FIRST(&m->preload->templates));
	free(m->preload);
	m->preload = NULL;
}
