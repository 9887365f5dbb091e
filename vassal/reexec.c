/* reexec.c — the start half of a graceful reload (see reexec.h). The listening
 * sockets never close: the kernel queues connections while the new image starts, so
 * no client is refused. Every array here is sized by what is handed over, not by a
 * fixed bound. */
#include "reexec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define STATE_VAR "VASSAL_RELOAD_STATE"

static void take_state(struct reexec_state *st)
{
	const char *s = getenv(STATE_VAR);
	unsigned gen;
	double started;
	int pending, end = 0, workers = 0, tail = 0;

	if (!s)
		return;
	if (sscanf(s, "generation=%u started=%lf pending=%d%n", &gen, &started, &pending, &end) == 3 &&
	    s[end] == ' ' && (sscanf(s + end, " workers=%d%n", &workers, &tail) != 1 || workers < 1))
		tail = -1; /* a scaled vassal's count, malformed */
	if (end == 0 || tail < 0 || s[end + tail] != '\0' || gen < 1 || (pending != 0 && pending != 1)) {
		log_warn("%s=\"%s\": not a reload state; starting as generation 1", STATE_VAR, s);
		return;
	}
	st->generation = gen;
	st->reload_started = started;
	st->reload_pending = pending;
	st->workers_target = workers;
	st->after_reexec = true;
}

static void take_config(struct reexec_state *st)
{
	const char *s = getenv("VASSAL_CONFIG_FD");
	char *end;
	long fd;

	if (!s)
		return;
	fd = strtol(s, &end, 10);
	if (*end || fd < 3 || fd > 65535) {
		log_warn("VASSAL_CONFIG_FD=\"%s\": not a file descriptor; reading the file", s);
		return;
	}
	st->config_text = fd_read_all((int)fd, CONFIG_MAX_FILE_SIZE, &st->config_len);
	if (!st->config_text)
		log_errno("VASSAL_CONFIG_FD=%ld: read; reading the file", fd);
	close((int)fd);
}

void reexec_restore(struct reexec_state *st)
{
	const char *daemons = getenv("VASSAL_DAEMONS");

	memset(st, 0, sizeof *st);
	st->generation = 1;
	st->reload_started = mono_now();
	take_state(st);
	take_config(st);
	if (daemons && *daemons && !(st->daemons = strdup(daemons)))
		log_errno("VASSAL_DAEMONS: strdup; the survive-reload daemons start anew");
	/* Before any child is spawned: no worker, mule or daemon inherits them. */
	unsetenv(STATE_VAR);
	unsetenv("VASSAL_CONFIG_FD");
	unsetenv("VASSAL_DAEMONS");
}

void reexec_state_fini(struct reexec_state *st)
{
	free(st->config_text);
	free(st->daemons);
	st->config_text = st->daemons = NULL;
}

static int config_memfd(const char *text, size_t len)
{
	int fd = memfd_create("vassal-config", MFD_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fd_write_all(fd, text, len) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Puts fds[i] at 3 + i, without close-on-exec. */
static int place_for_exec(const int *fds, int n)
{
	int *tmp = calloc((size_t)n + 1, sizeof *tmp), rc = -1, i;

	if (!tmp)
		return -1;
	for (i = 0; i < n; i++)
		if ((tmp[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3 + n)) < 0)
			goto out;
	for (i = 0; i < n; i++) {
		if (dup2(tmp[i], 3 + i) < 0)
			goto out;
		close(tmp[i]);
	}
	rc = 0;
out:
	free(tmp);
	return rc;
}

static int setenv_fmt(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int setenv_fmt(const char *key, const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof buf) {
		errno = EOVERFLOW;
		return -1;
	}
	return setenv(key, buf, 1);
}

/* The sockets' fds (then the emperor channel's and the config's) and their names. */
static int collect_fds(const struct master *m, int **fds, char **names)
{
	size_t len = 1;

	for (size_t i = 0; i < m->socks.n; i++)
		len += strlen(m->socks.v[i].name) + 1;
	*fds = calloc(m->socks.n + 2, sizeof **fds);
	*names = malloc(len);
	if (!*fds || !*names)
		return -1;
	vsock_all_fds(&m->socks, *fds, *names, len);
	return 0;
}

static int set_env(const struct master *m, const struct reexec_state *next, const char *names,
		   int emperor_at, int config_at)
{
	if (setenv_fmt("LISTEN_FDS", "%zu", m->socks.n) < 0 ||
	    setenv_fmt("LISTEN_PID", "%d", (int)getpid()) < 0 ||
	    setenv("LISTEN_FDNAMES", names, 1) < 0 ||
	    (emperor_at >= 0 && setenv_fmt("EMPEROR_FD", "%d", emperor_at) < 0) ||
	    (config_at >= 0 && setenv_fmt("VASSAL_CONFIG_FD", "%d", config_at) < 0) ||
	    setenv_fmt(STATE_VAR, "generation=%u started=%.6f pending=%d%s%.0d", next->generation,
		       next->reload_started, next->reload_pending ? 1 : 0,
		       /* %.0d of 0 writes nothing: " workers=N" only for a scaled vassal */
		       next->workers_target > 0 ? " workers=" : "", next->workers_target) < 0 ||
	    (next->daemons && *next->daemons && setenv("VASSAL_DAEMONS", next->daemons, 1) < 0))
		return -1;
	return 0;
}

int reexec_exec(struct master *m, const struct reexec_state *next)
{
	char *argv[] = { m->exe, m->path, NULL }, *names = NULL;
	int *fds = NULL, n = (int)m->socks.n, emperor_at = -1, config_at = -1, cfg_fd = -1;

	if (collect_fds(m, &fds, &names) < 0) {
		log_errno("reload: cannot hand %d sockets to the new image", n);
		goto fail;
	}
	if (m->emperor_fd >= 0)
		fds[emperor_at = n++] = m->emperor_fd;
	if (next->config_text && (cfg_fd = config_memfd(next->config_text, next->config_len)) < 0)
		log_errno("reload: memfd for the config; the new image reads the file");
	if (cfg_fd >= 0)
		fds[config_at = n++] = cfg_fd;
	if (place_for_exec(fds, n) < 0) {
		log_errno("reload: cannot hand the sockets to the new image");
		goto fail;
	}
	if (set_env(m, next, names, emperor_at < 0 ? -1 : 3 + emperor_at,
		    config_at < 0 ? -1 : 3 + config_at) < 0) {
		log_errno("reload: cannot set the new image's environment");
		goto fail;
	}
	log_info("reload: re-exec %s (generation %u -> %u, %zu socket%s kept open)", m->exe,
		 next->generation - 1, next->generation, m->socks.n, m->socks.n == 1 ? "" : "s");
	execv(m->exe, argv);
	log_errno("reload: execv %s", m->exe);
fail:
	free(fds);
	free(names);
	return -1;
}
