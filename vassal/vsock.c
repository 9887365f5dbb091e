/* vsock.c — the vassal's listening sockets (see vsock.h). Sockets stay blocking: the
 * O_NONBLOCK flag belongs to the open file description shared with every worker, and
 * socket-activated programs expect what systemd gives them, a blocking socket. */
#include "vsock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define LISTEN_FDS_START 3

static int somaxconn(void)
{
	FILE *f = fopen("/proc/sys/net/core/somaxconn", "re");
	int n = 4096;

	if (f) {
		if (fscanf(f, "%d", &n) != 1 || n <= 0)
			n = 4096;
		fclose(f);
	}
	return n;
}

static bool addr_equal(const struct sockaddr_storage *a, socklen_t alen,
		       const struct cfg_addr *b)
{
	if (a->ss_family != b->ss.ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)&b->ss;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)&b->ss;
		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
	}
	if (a->ss_family == AF_UNIX)
		return alen == b->len && memcmp(a, &b->ss, alen) == 0;
	return false;
}

/* The inherited fd whose bound address is addr, or -1. Taken fds are set to -1. */
static int take_inherited(int *fds, int n, const struct cfg_addr *addr)
{
	for (int i = 0; i < n; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		if (fds[i] < 0 || getsockname(fds[i], (struct sockaddr *)&ss, &len) < 0)
			continue;
		if (addr_equal(&ss, len, addr)) {
			int fd = fds[i];
			fds[i] = -1;
			return fd;
		}
	}
	return -1;
}

static int unix_prepare(const struct cfg_socket *s)
{
	const struct sockaddr_un *sun = (const void *)&s->addr.ss;
	struct stat st;

	if (sun->sun_path[0] == '\0') /* abstract */
		return 0;
	if (lstat(sun->sun_path, &st) == 0 && S_ISSOCK(st.st_mode) && unlink(sun->sun_path) < 0) {
		log_errno("socket %s: unlink stale %s", s->name, sun->sun_path);
		return -1;
	}
	return 0;
}

static int unix_finish(const struct cfg_socket *s)
{
	const struct sockaddr_un *sun = (const void *)&s->addr.ss;
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;

	if (sun->sun_path[0] == '\0')
		return 0;
	if (chmod(sun->sun_path, s->mode) < 0) {
		log_errno("socket %s: chmod %s", s->name, sun->sun_path);
		return -1;
	}
	if (s->owner) {
		struct passwd *pw = getpwnam(s->owner);
		if (!pw) {
			log_warn("socket %s: unknown owner '%s'", s->name, s->owner);
			return -1;
		}
		uid = pw->pw_uid;
	}
	if (s->group) {
		struct group *gr = getgrnam(s->group);
		if (!gr) {
			log_warn("socket %s: unknown group '%s'", s->name, s->group);
			return -1;
		}
		gid = gr->gr_gid;
	}
	if ((s->owner || s->group) && chown(sun->sun_path, uid, gid) < 0) {
		log_errno("socket %s: chown %s", s->name, sun->sun_path);
		return -1;
	}
	return 0;
}

static int bind_one(const struct cfg_socket *s)
{
	int family = s->addr.ss.ss_family, one = 1;
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		log_errno("socket %s (%s): socket", s->name, s->addr.text);
		return -1;
	}
	if (family != AF_UNIX && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
		goto fail;
	if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
		goto fail;
	if (family == AF_UNIX && unix_prepare(s) < 0)
		goto fail_quiet;
	if (bind(fd, (const struct sockaddr *)&s->addr.ss, s->addr.len) < 0)
		goto fail;
	if (family == AF_UNIX && unix_finish(s) < 0)
		goto fail_quiet;
	if (listen(fd, s->backlog > 0 ? s->backlog : somaxconn()) < 0)
		goto fail;
	return fd;
fail:
	log_errno("socket %s: cannot listen on %s", s->name, s->addr.text);
fail_quiet:
	close(fd);
	return -1;
}

/* The fds handed to us by socket activation, or 0 if none are ours. */
static int inherited_fds(int *fds, int max)
{
	const char *pid_s = getenv("LISTEN_PID"), *n_s = getenv("LISTEN_FDS");
	int n;

	if (!pid_s || !n_s || atoi(pid_s) != (int)getpid())
		return 0;
	n = atoi(n_s);
	if (n < 0 || n > max) {
		log_warn("LISTEN_FDS=%s: ignored (expected 0..%d)", n_s, max);
		return 0;
	}
	for (int i = 0; i < n; i++) {
		fds[i] = LISTEN_FDS_START + i;
		if (fd_set_cloexec(fds[i], 1) < 0) {
			log_errno("LISTEN_FDS: fd %d", fds[i]);
			fds[i] = -1;
		}
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return n;
}

int vsock_setup(struct vsock_table *t, const struct config *cfg)
{
	int given[256], n_given = inherited_fds(given, (int)ARRAY_LEN(given));

	t->n = 0;
	t->v = calloc(cfg->n_sockets ? cfg->n_sockets : 1, sizeof *t->v);
	if (!t->v)
		return -1;
	for (size_t i = 0; i < cfg->n_sockets; i++) {
		const struct cfg_socket *s = &cfg->sockets[i];
		struct vsock *v = &t->v[t->n];
		v->name = strdup(s->name);
		v->addr = s->addr;
		v->fd = take_inherited(given, n_given, &s->addr);
		v->inherited = v->fd >= 0;
		if (v->fd < 0)
			v->fd = bind_one(s);
		if (v->fd < 0 || !v->name) {
			free(v->name);
			for (int k = 0; k < n_given; k++)
				if (given[k] >= 0)
					close(given[k]);
			return -1;
		}
		log_info("socket %s: %s %s (fd %d)", v->name, v->inherited ? "kept" : "listening on",
			 v->addr.text, v->fd);
		t->n++;
	}
	for (int k = 0; k < n_given; k++)
		if (given[k] >= 0) {
			log_info("closing inherited fd %d: no socket of the config has its address", given[k]);
			close(given[k]);
		}
	return 0;
}

void vsock_fds(const struct vsock_table *t, int *fds, char *names, size_t len)
{
	size_t used = 0;

	names[0] = '\0';
	for (size_t i = 0; i < t->n; i++) {
		fds[i] = t->v[i].fd;
		int n = snprintf(names + used, len - used, "%s%s", i ? ":" : "", t->v[i].name);
		if (n > 0 && (size_t)n < len - used)
			used += (size_t)n;
	}
}

void vsock_close_all(struct vsock_table *t, bool unlink_unix)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct sockaddr_un *sun = (const void *)&t->v[i].addr.ss;
		if (t->v[i].fd >= 0)
			close(t->v[i].fd);
		if (unlink_unix && sun->sun_family == AF_UNIX && sun->sun_path[0])
			unlink(sun->sun_path);
		free(t->v[i].name);
	}
	free(t->v);
	t->v = NULL;
	t->n = 0;
}
