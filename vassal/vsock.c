/* vsock.c — the vassal's listening sockets (see vsock.h). Sockets stay blocking: the
 * O_NONBLOCK flag belongs to the open file description shared with every worker, and
 * socket-activated programs expect what systemd gives them, a blocking socket. */
#include "vsock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "parse.h"
#include "util.h"

#define LISTEN_FDS_START 3
#define VSOCK_FD_MARGIN 64 /* the master's own fds: log, notify, channels, status, inotify */

static int bind_one(const struct cfg_socket *s, int type);

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

/* The given fd of this type bound to addr, or -1. A taken one's fd becomes -1. */
static int take_given(struct vsock_given *g, const struct cfg_addr *addr, int type)
{
	for (size_t i = 0; i < g->n; i++) {
		struct vsock *v = &g->v[i];
		if (v->fd >= 0 && v->type == type && addr_equal(&v->addr.ss, v->addr.len, addr)) {
			int fd = v->fd;
			v->fd = -1;
			return fd;
		}
	}
	return -1;
}

static int given_reserve(struct vsock_given *g, size_t more)
{
	size_t cap = g->cap ? g->cap : 8;
	struct vsock *v;

	while (cap < g->n + more)
		cap *= 2;
	if (cap == g->cap)
		return 0;
	if (!(v = realloc(g->v, cap * sizeof *v)))
		return -1;
	g->v = v;
	g->cap = cap;
	return 0;
}

int vsock_given_add(struct vsock_given *g, int fd, const char *name)
{
	socklen_t tlen = sizeof(int);
	char *copy = name ? strdup(name) : NULL;
	struct vsock *v;

	if ((name && !copy) || given_reserve(g, 1) < 0) {
		log_errno("%s: fd %d: closed", g->label, fd);
		free(copy);
		close(fd);
		return -1;
	}
	v = &g->v[g->n++];
	*v = (struct vsock){ .name = copy, .fd = fd, .inherited = true };
	v->addr.len = sizeof v->addr.ss;
	if (getsockname(fd, (struct sockaddr *)&v->addr.ss, &v->addr.len) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &v->type, &tlen) < 0)
		v->type = -1; /* no socket: matches none, closed with the leftovers */
	return 0;
}

int vsock_given_move(struct vsock_given *to, struct vsock_given *from,
		     const struct cfg_addr *addr, int type)
{
	for (size_t i = 0; i < from->n; i++) {
		struct vsock *v = &from->v[i];
		if (v->fd < 0 || v->type != type || !addr_equal(&v->addr.ss, v->addr.len, addr))
			continue;
		if (given_reserve(to, 1) < 0)
			return -1;
		to->v[to->n++] = *v;
		from->v[i] = from->v[--from->n];
		return to->v[to->n - 1].fd;
	}
	return -1;
}

int vsock_given_take_table(struct vsock_given *g, struct vsock_table *t)
{
	if (given_reserve(g, t->n) < 0) {
		log_errno("%s: sockets", g->label);
		return -1;
	}
	for (size_t i = 0; i < t->n; i++)
		g->v[g->n++] = t->v[i];
	free(t->v);
	t->v = NULL;
	t->n = t->n_workers = 0;
	return 0;
}

/* The given sockets none took are closed (their unix files removed if they are ours);
 * g is emptied. */
void vsock_given_close(struct vsock_given *g)
{
	for (size_t i = 0; i < g->n; i++) {
		struct vsock *v = &g->v[i];
		if (v->fd >= 0 && v->name)
			log_info("%s: socket %s: closing %s (fd %d): no socket of the config has "
				 "its address", g->label, v->name, v->addr.text, v->fd);
		else if (v->fd >= 0)
			log_info("%s: closing fd %d: no socket of the config has its address",
				 g->label, v->fd);
		if (v->fd >= 0) {
			close(v->fd);
			if (g->ours)
				vsock_unlink(v->name ? v->name : "(given)", &v->addr);
		}
		free(v->name);
	}
	free(g->v);
	g->v = NULL;
	g->n = g->cap = 0;
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

void vsock_unlink(const char *name, const struct cfg_addr *addr)
{
	const struct sockaddr_un *sun = (const void *)&addr->ss;

	if (sun->sun_family == AF_UNIX && sun->sun_path[0] && unlink(sun->sun_path) < 0 &&
	    errno != ENOENT)
		log_errno("socket %s: unlink %s", name, sun->sun_path);
}

static int bind_one(const struct cfg_socket *s, int type)
{
	int family = s->addr.ss.ss_family, one = 1;
	int fd = socket(family, type | SOCK_CLOEXEC, 0);

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
	if (type == SOCK_DGRAM) { /* a subscription server: the sender's uid is checked */
		if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
			goto fail;
		return fd;
	}
	if (listen(fd, s->backlog > 0 ? s->backlog : somaxconn()) < 0)
		goto fail;
	return fd;
fail:
	log_errno("socket %s: cannot listen on %s", s->name, s->addr.text);
fail_quiet:
	close(fd);
	return -1;
}

/* The fds handed to us by socket activation, added to g: as many as LISTEN_FDS says
 * (if LISTEN_PID is ours), up to what our fd limit can hold. */
static void inherited_fds(struct vsock_given *g)
{
	const char *pid_s = getenv("LISTEN_PID"), *n_s = getenv("LISTEN_FDS"), *why;
	unsigned long long pid, count;
	struct rlimit rl;

	if (!pid_s || !n_s || parse_uint(pid_s, INT_MAX, &pid, NULL) < 0 || (pid_t)pid != getpid())
		return;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur > INT_MAX)
		rl.rlim_cur = INT_MAX;
	if (parse_uint(n_s, rl.rlim_cur - LISTEN_FDS_START, &count, &why) < 0) {
		log_warn("LISTEN_FDS=%s: ignored (%s: expected 0..%d, the fd limit)", n_s, why,
			 (int)rl.rlim_cur - LISTEN_FDS_START);
		return;
	}
	if (given_reserve(g, count) < 0) {
		log_errno("LISTEN_FDS=%s: ignored", n_s);
		return;
	}
	for (int fd = LISTEN_FDS_START; fd < LISTEN_FDS_START + (int)count; fd++) {
		if (fd_set_cloexec(fd, 1) < 0)
			log_errno("LISTEN_FDS: fd %d", fd);
		else
			vsock_given_add(g, fd, NULL);
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
}

/* The master holds every listening socket plus its own channels, and a worker gets
 * them all on fds 3..: check the fd limit fits them before binding, raising the soft
 * limit up to the hard one if that is enough, else say what to do. */
static int check_fd_limit(size_t n_sockets, size_t n_workers)
{
	rlim_t need = (rlim_t)(n_sockets + VSOCK_FD_MARGIN + 2 * n_workers);
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_errno("getrlimit(RLIMIT_NOFILE)");
		return -1;
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
		return 0;
	if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 4 * need ? 4 * need
										     : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			return 0;
		log_errno("setrlimit(RLIMIT_NOFILE, %llu)", (unsigned long long)rl.rlim_cur);
	}
	log_warn("%zu listening sockets need about %llu fds, but the fd limit (RLIMIT_NOFILE) "
		 "is %llu (hard %llu): raise it (ulimit -n, LimitNOFILE=) or use fewer sockets",
		 n_sockets, (unsigned long long)need, (unsigned long long)rl.rlim_cur,
		 (unsigned long long)rl.rlim_max);
	return -1;
}

/* s as t's next socket: the given one of its address and type, or bound anew. */
static int add_one(struct vsock_table *t, const struct cfg_socket *s, int type,
		   struct vsock_given *g)
{
	struct vsock *v = &t->v[t->n];

	v->name = strdup(s->name);
	if (!v->name) {
		log_errno("socket %s", s->name);
		return -1;
	}
	v->addr = s->addr;
	v->type = type;
	v->fd = take_given(g, &s->addr, type);
	v->inherited = v->fd >= 0;
	if (v->fd < 0)
		v->fd = bind_one(s, type);
	if (v->fd < 0) {
		free(v->name);
		return -1;
	}
	t->n++;
	return 0;
}

/* The gateways' sockets, as cfg_sockets named gateway-N and gateway-N-sub. */
static int add_gateways(struct vsock_table *t, const struct config *cfg, struct vsock_given *g)
{
	int rc = 0;

	for (size_t i = 0; i < cfg->n_gateways; i++) {
		const struct cfg_gateway *gw = &cfg->gateways[i];
		char name[48];
		snprintf(name, sizeof name, "gateway-%zu", i + 1);
		struct cfg_socket s = { .name = name, .addr = gw->listen, .mode = 0666 };
		if (add_one(t, &s, SOCK_STREAM, g) < 0)
			rc = -1;
		if (!gw->has_subscription_server)
			continue;
		snprintf(name, sizeof name, "gateway-%zu-sub", i + 1);
		s.addr = gw->subscription_server;
		if (add_one(t, &s, SOCK_DGRAM, g) < 0)
			rc = -1;
	}
	return rc;
}

/* The mule farms' datagram sockets, "mule-NAME", in the abstract namespace: kept
 * across the re-exec like the others, so no queued message is lost and a sender
 * never finds the farm gone. */
static int add_mule_farms(struct vsock_table *t, const struct config *cfg, struct vsock_given *g)
{
	int rc = 0;

	for (size_t i = 0; i < cfg->n_mules; i++) {
		char name[48], text[160];
		const char *why = NULL;
		struct cfg_socket s = { .name = name };
		snprintf(name, sizeof name, "mule-%s", cfg->mules[i].name);
		snprintf(text, sizeof text, "unix:@emperor-mule/%s/%d/%s", cfg->name, (int)getpid(),
			 cfg->mules[i].name);
		if (parse_addr(text, &s.addr, &why) < 0 || add_one(t, &s, SOCK_DGRAM, g) < 0)
			rc = -1;
	}
	return rc;
}

int vsock_adopt(struct vsock_table *t, const struct cfg_socket *socks, size_t n,
		const struct config *cfg, struct vsock_given *g)
{
	size_t total = n + (cfg ? 2 * cfg->n_gateways + cfg->n_mules : 0);
	int rc = 0;

	t->n = t->n_workers = 0;
	t->v = calloc(total + 1, sizeof *t->v);
	if (!t->v) {
		log_errno("sockets: out of memory");
		vsock_given_close(g);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (add_one(t, &socks[i], SOCK_STREAM, g) < 0)
			rc = -1;
	t->n_workers = t->n;
	if (cfg && add_gateways(t, cfg, g) < 0)
		rc = -1;
	if (cfg && add_mule_farms(t, cfg, g) < 0)
		rc = -1;
	vsock_given_close(g);
	return rc;
}

int vsock_setup(struct vsock_table *t, const struct config *cfg)
{
	size_t total = cfg->n_sockets + 2 * cfg->n_gateways + cfg->n_mules;
	struct vsock_given given = { .label = "LISTEN_FDS" };
	int rc;

	t->n = 0;
	if (check_fd_limit(total, cfg->has_workers ? (size_t)cfg->workers.count_max : 0) < 0)
		return -1;
	inherited_fds(&given);
	rc = vsock_adopt(t, cfg->sockets, cfg->n_sockets, cfg, &given);
	for (size_t i = 0; i < t->n; i++)
		log_info("socket %s: %s %s (fd %d)", t->v[i].name,
			 t->v[i].inherited ? "kept" : "listening on", t->v[i].addr.text, t->v[i].fd);
	return rc;
}

static void fds_of(const struct vsock_table *t, size_t n, int *fds, char *names, size_t len)
{
	size_t used = 0;

	names[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		fds[i] = t->v[i].fd;
		int k = snprintf(names + used, len - used, "%s%s", i ? ":" : "", t->v[i].name);
		if (k > 0 && (size_t)k < len - used)
			used += (size_t)k;
	}
}

/* The first n sockets' fds and "a:b:c" names, malloc'd; -1 when out of memory. */
static int fds_alloc(const struct vsock_table *t, size_t n, int **fds, char **names)
{
	size_t len = 1;

	for (size_t i = 0; i < n; i++)
		len += strlen(t->v[i].name) + 1;
	*fds = calloc(n ? n : 1, sizeof **fds);
	*names = malloc(len);
	if (!*fds || !*names) {
		free(*fds), free(*names);
		*fds = NULL, *names = NULL;
		return -1;
	}
	fds_of(t, n, *fds, *names, len);
	return 0;
}

int vsock_worker_fds(const struct vsock_table *t, int **fds, char **names)
{
	return fds_alloc(t, t->n_workers, fds, names);
}

int vsock_every_fd(const struct vsock_table *t, int **fds, char **names)
{
	return fds_alloc(t, t->n, fds, names);
}

void vsock_fds(const struct vsock_table *t, int *fds, char *names, size_t len)
{
	fds_of(t, t->n_workers, fds, names, len);
}

void vsock_all_fds(const struct vsock_table *t, int *fds, char *names, size_t len)
{
	fds_of(t, t->n, fds, names, len);
}

int vsock_find(const struct vsock_table *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->v[i].name, name) == 0)
			return t->v[i].fd;
	return -1;
}

void vsock_close_all(struct vsock_table *t, bool unlink_unix)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct sockaddr_un *sun = (const void *)&t->v[i].addr.ss;
		if (t->v[i].fd >= 0)
			close(t->v[i].fd);
		if (unlink_unix && sun->sun_family == AF_UNIX && sun->sun_path[0]) {
			vsock_unlink(t->v[i].name, &t->v[i].addr);
			if (t->v[i].type == SOCK_DGRAM) { /* a router's saved nodes (router.c) */
				char nodes[sizeof sun->sun_path + 8];
				snprintf(nodes, sizeof nodes, "%s.nodes", sun->sun_path);
				unlink(nodes);
			}
		}
		free(t->v[i].name);
	}
	free(t->v);
	t->v = NULL;
	t->n = 0;
}
