/* upgrade.c — SIGUSR2: the emperor re-execs its own binary in place and keeps every
 * vassal running. The vassal table (file, pid, channel and output fds, state, file
 * identity, cgroup) is written to a memfd whose number is passed as EMPEROR_STATE_FD;
 * the channel and output fds stay open across the exec. The vassals are still our
 * children (same pid), so the new image simply watches them again. The on-demand
 * vassals' sockets go across too (demand.c). If the exec fails
 * everything is put back as it was: the fds close-on-exec again, signals unblocked. */
#include "upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "demand.h"
#include "log.h"
#include "output.h"
#include "util.h"

#define CG_FIELD "cg="              /* the cgroup field: "cg=-" or "cg=" + hex */
#define ETCD_FIELD "etcd/"          /* before the file name: a file of the etcd mirror
				     * ('/' is in no file name) */

static void hex_encode(const char *s, char *out, size_t len)
{
	size_t i = 0;

	for (; *s && i + 3 <= len; s++, i += 2)
		snprintf(out + i, 3, "%02x", (unsigned char)*s);
	out[i < len ? i : len - 1] = '\0';
}

static int hex_decode(const char *s, size_t n, char *out, size_t len)
{
	size_t k = 0;

	if (n % 2 || n / 2 >= len)
		return -1;
	for (size_t i = 0; i < n; i += 2) {
		unsigned byte;
		if (sscanf(s + i, "%2x", &byte) != 1 || byte == 0)
			return -1;
		out[k++] = (char)byte;
	}
	out[k] = '\0';
	return 0;
}

int upgrade_format(const struct vassal *v, char *buf, size_t len)
{
	char cg[2 * PATH_MAX + 1] = "-";
	int n;

	if (v->cg_path)
		hex_encode(v->cg_path, cg, sizeof cg);
	n = snprintf(buf, len, "%d\t%d\t%d\t%d\t%.6f\t%llu\t%llu\t%lld\t%lld\t%ld\t%llu\t"
		     CG_FIELD "%s\t%s%s\n", (int)v->child.pid, v->chan_fd, output_fd(v), (int)v->state,
		     v->child.started_at, (unsigned long long)v->id.dev,
		     (unsigned long long)v->id.ino, (long long)v->id.size,
		     (long long)v->id.mtime.tv_sec, v->id.mtime.tv_nsec,
		     (unsigned long long)v->id.hash, cg, v->from_etcd ? ETCD_FIELD : "", v->file);
	return n < 0 || (size_t)n >= len ? -1 : n;
}

int upgrade_parse(const char *line, struct upgrade_record *r)
{
	unsigned long long dev, ino, hash;
	long long size, sec;
	long nsec;
	int n = 0;

	memset(r, 0, sizeof *r);
	if (sscanf(line, "%d\t%d\t%d\t%d\t%lf\t%llu\t%llu\t%lld\t%lld\t%ld\t%llu\t%n", &r->pid,
		   &r->chan_fd, &r->out_fd, &r->state, &r->started, &dev, &ino, &size, &sec, &nsec,
		   &hash, &n) < 11 || n == 0)
		return -1;
	r->id = (struct file_id){ .dev = (dev_t)dev, .ino = (ino_t)ino, .size = (off_t)size,
				  .mtime = { .tv_sec = (time_t)sec, .tv_nsec = nsec }, .hash = hash };
	line += n;
	if (strncmp(line, CG_FIELD, strlen(CG_FIELD)) == 0 && strchr(line, '\t')) {
		const char *cg = line + strlen(CG_FIELD), *tab = strchr(line, '\t');
		if (strncmp(cg, "-\t", 2) != 0 &&
		    hex_decode(cg, (size_t)(tab - cg), r->cg_path, sizeof r->cg_path) < 0)
			return -1;
		line = tab + 1;
	}
	if (strncmp(line, ETCD_FIELD, strlen(ETCD_FIELD)) == 0) {
		r->from_etcd = true;
		line += strlen(ETCD_FIELD);
	}
	if (!*line || strlen(line) >= sizeof r->file)
		return -1;
	snprintf(r->file, sizeof r->file, "%s", line);
	return 0;
}

/* Whether the on-demand sockets survive an exec; their list goes to EMPEROR_DEMAND_FDS. */
static void keep_demand_sockets(struct emperor *e, int keep)
{
	struct strbuf list = { 0 };
	struct vassal *v;

	TAILQ_FOREACH(v, &e->vassals, link)
		if (v->demand && demand_keep_across_exec(v->demand, keep, &list) < 0)
			log_errno("upgrade: %s: the on-demand sockets", v->name);
	if (keep && list.len && setenv(DEMAND_HANDED_VAR, list.p, 1) < 0)
		log_errno("upgrade: %s", DEMAND_HANDED_VAR);
	if (!keep)
		unsetenv(DEMAND_HANDED_VAR);
	strbuf_free(&list);
}

/* Whether the running vassals' channel and output fds survive an exec. */
static void keep_across_exec(struct emperor *e, int keep)
{
	struct vassal *v;

	keep_demand_sockets(e, keep);
	TAILQ_FOREACH(v, &e->vassals, link) {
		if (!child_running(&v->child))
			continue;
		if (v->chan_fd >= 0 && fd_set_cloexec(v->chan_fd, !keep) < 0)
			log_errno("upgrade: %s: fcntl(%d)", v->name, v->chan_fd);
		if (output_fd(v) >= 0 && fd_set_cloexec(output_fd(v), !keep) < 0)
			log_errno("upgrade: %s: fcntl(%d)", v->name, output_fd(v));
	}
}

/* The table in a memfd (no CLOEXEC: the new image reads it); -1 if it cannot be. */
static int save_table(struct emperor *e)
{
	int fd = memfd_create("emperor-state", 0);
	FILE *f = fd >= 0 ? fdopen(dup(fd), "w") : NULL;
	char line[3 * PATH_MAX];
	struct vassal *v;

	if (!f) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	TAILQ_FOREACH(v, &e->vassals, link)
		if (child_running(&v->child) && upgrade_format(v, line, sizeof line) > 0)
			fputs(line, f);
	if (fclose(f) != 0 || lseek(fd, 0, SEEK_SET) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

void upgrade_exec(struct emperor *e, char **argv)
{
	int fd = save_table(e);
	char buf[32];
	sigset_t block, old;
	int err;

	if (fd < 0) {
		log_errno("upgrade: cannot save the vassal table; not upgrading");
		return;
	}
	keep_across_exec(e, 1);
	snprintf(buf, sizeof buf, "%d", fd);
	setenv("EMPEROR_STATE_FD", buf, 1);
	sigfillset(&block);
	sigprocmask(SIG_BLOCK, &block, &old);
	log_info("SIGUSR2: re-exec %s, keeping every vassal", e->exe);
	output_sink_drain(e, 1000); /* what stderr has not taken yet would be lost */
	execv(e->exe, argv);
	err = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	unsetenv("EMPEROR_STATE_FD");
	keep_across_exec(e, 0);
	close(fd);
	errno = err; /* logged once all is put back: the line says we go on as before */
	log_errno("upgrade: execv %s; going on as we are", e->exe);
}

static void read_record(struct emperor *e, const char *line)
{
	struct upgrade_record r;
	struct vassal *v;

	if (upgrade_parse(line, &r) < 0) {
		log_warn("upgrade: unreadable record '%.200s'", line);
		return;
	}
	v = vtable_adopt(e, &r);
	if (v && v->state == VASSAL_STOPPING)
		child_curse(&v->child, SIGTERM, v->stop_mercy);
	log_info("upgrade: kept %s (pid %d, %s%s%s)", r.file, (int)r.pid, vtable_state_name(r.state),
		 r.cg_path[0] ? ", cgroup " : "", r.cg_path);
}

int upgrade_restore(struct emperor *e)
{
	const char *s = getenv("EMPEROR_STATE_FD");
	char line[3 * PATH_MAX];
	FILE *f;

	demand_handed_take(); /* before the records: an adopted one takes its sockets */
	if (!s)
		return 0;
	unsetenv("EMPEROR_STATE_FD");
	f = fdopen(atoi(s), "r");
	if (!f) {
		log_errno("upgrade: EMPEROR_STATE_FD=%s", s);
		return -1;
	}
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		read_record(e, line);
	}
	fclose(f);
	/* A vassal that died during the exec left a zombie nobody was told about. */
	ev_feed_signal(SIGCHLD);
	return 0;
}
