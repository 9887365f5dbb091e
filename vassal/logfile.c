/* logfile.c — the vassal's own log file (see logfile.h). The master's fds 1 and 2 are
 * the file; a rotation renames PATH.N to PATH.N+1 (the last one is overwritten),
 * PATH to PATH.1, opens a new PATH and dup2()s it onto 1 and 2, all between two
 * writes of the loop: each line is one write(2), to the old file or the new one.
 * Children that write to their inherited stdout directly (not through a relay pipe)
 * keep writing to the renamed file until they are respawned: their lines are in
 * PATH.1, not lost. The size is counted from the relayed writes and checked with
 * fstat before a rotation (the master's own lines and those children's count too). */
#include "logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "master.h"
#include "relay.h"
#include "util.h"

struct logfile {
	struct master *m;
	long long size;            /* bytes in the current file, as far as we know */
	int open_errno;            /* the last open failed with this; 0 = open */
	bool regular;              /* a regular file: rotation applies */
	unsigned long rotations;
	struct relay_sink *sink;   /* the workers' sink, once there is one */
	ev_timer retry;            /* armed while open_errno */
};

int logfile_name(const char *path, int n, char *buf, size_t size)
{
	int len = n ? snprintf(buf, size, "%s.%d", path, n) : snprintf(buf, size, "%s", path);

	return len < 0 || (size_t)len >= size ? -1 : 0;
}

/* Opens PATH onto fds 1 and 2: 0, or -1 with errno. */
static int open_onto_stdout(struct logfile *lf)
{
	const char *path = lf->m->cfg->log.file;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640), err;
	struct stat st;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) {
		err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	close(fd);
	lf->regular = S_ISREG(st.st_mode);
	lf->size = st.st_size;
	return 0;
}

/* The sink wrote to a pipe of its own (our stdout before the file could be opened):
 * it now follows fd 1, the file. */
static void sink_follow(struct logfile *lf)
{
	struct relay_sink *s = lf->sink;

	if (!s || !s->own_fd)
		return;
	relay_sink_close(s);
	if (relay_sink_open(s, lf->m->loop, STDOUT_FILENO) < 0)
		log_warn("log: the workers' lines still go to the previous output");
	logfile_attach(lf->m, s);
}

static void try_open(struct logfile *lf, const char *what)
{
	const char *path = lf->m->cfg->log.file;
	int was = lf->open_errno;

	if (open_onto_stdout(lf) < 0) {
		lf->open_errno = errno;
		if (was != errno)
			log_warn("log %s: %s: %s (retrying every %.0fs; lines go to the previous "
				 "output meanwhile)", path, what, strerror(errno), LOGFILE_RETRY);
		if (!ev_is_active(&lf->retry)) {
			ev_timer_set(&lf->retry, LOGFILE_RETRY, LOGFILE_RETRY);
			ev_timer_start(lf->m->loop, &lf->retry);
		}
		return;
	}
	lf->open_errno = 0;
	ev_timer_stop(lf->m->loop, &lf->retry);
	if (was)
		log_info("log %s: open again after %s", path, strerror(was));
	sink_follow(lf);
}

static void retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop, (void)revents;
	try_open(container_of(t, struct logfile, retry), "open");
}

/* PATH.N -> PATH.N+1 for N = keep-1 .. 1, then PATH -> PATH.1. */
static int shift_files(const char *path, int keep)
{
	char from[PATH_MAX], to[PATH_MAX];

	for (int n = keep - 1; n >= 0; n--) {
		if (logfile_name(path, n, from, sizeof from) < 0 ||
		    logfile_name(path, n + 1, to, sizeof to) < 0) {
			errno = ENAMETOOLONG;
			return -1;
		}
		if (rename(from, to) < 0 && (errno != ENOENT || n == 0))
			return -1;
	}
	return 0;
}

static void rotate(struct logfile *lf)
{
	const struct cfg_log *cl = &lf->m->cfg->log;
	long long was = lf->size;

	if (shift_files(cl->file, cl->keep) < 0) {
		log_errno("log %s: rotation", cl->file);
		lf->size = 0; /* tried again after another max-size */
		return;
	}
	lf->rotations++;
	try_open(lf, "open after rotation"); /* failing: lines go on into PATH.1 */
	log_info("log rotated: %lld bytes to %s.1, keeping %d", was, cl->file, cl->keep);
}

static void wrote(struct relay_sink *s, size_t n)
{
	struct master *m = s->data;
	struct logfile *lf = m->logfile;
	struct stat st;

	if (!lf || !lf->regular || lf->open_errno || m->cfg->log.max_size <= 0)
		return;
	lf->size += (long long)n;
	if (lf->size < m->cfg->log.max_size)
		return;
	if (fstat(STDOUT_FILENO, &st) == 0)
		lf->size = st.st_size;
	if (lf->size >= m->cfg->log.max_size)
		rotate(lf);
}

void logfile_attach(struct master *m, struct relay_sink *s)
{
	if (!m->logfile)
		return;
	m->logfile->sink = s;
	s->on_write = wrote;
	s->data = m;
}

void logfile_open(struct master *m)
{
	struct logfile *lf;

	if (!m->cfg->log.file)
		return;
	lf = calloc(1, sizeof *lf);
	if (!lf) {
		log_errno("log %s: not opened", m->cfg->log.file);
		return;
	}
	lf->m = m;
	ev_init(&lf->retry, retry_cb);
	m->logfile = lf;
	try_open(lf, "open");
}

void logfile_reopen(struct master *m)
{
	if (!m->logfile)
		return;
	try_open(m->logfile, "reopen");
	if (!m->logfile->open_errno)
		log_info("log reopened");
}

int logfile_error(const struct master *m)
{
	if (!m->logfile)
		return 0;
	if (m->logfile->open_errno)
		return m->logfile->open_errno;
	return m->out ? m->out->last_errno : 0;
}

unsigned long logfile_lost_lines(const struct master *m)
{
	return m->logfile && m->out ? m->out->lost_lines : 0;
}

unsigned long logfile_rotations(const struct master *m)
{
	return m->logfile ? m->logfile->rotations : 0;
}
