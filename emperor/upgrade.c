/* upgrade.c — SIGUSR2: the emperor re-execs its own binary in place and keeps every
 * vassal running. The vassal table (file, pid, channel and output fds, state, file
 * identity) is written to a memfd whose number is passed as EMPEROR_STATE_FD; the
 * channel and output fds stay open across the exec. The vassals are still our
 * children (same pid), so the new image simply watches them again. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "emperor.h"
#include "log.h"
#include "util.h"

static void write_record(FILE *f, const struct vassal *v)
{
	fprintf(f, "%d\t%d\t%d\t%d\t%.6f\t%llu\t%llu\t%lld\t%lld\t%ld\t%llu\t%s\n",
		(int)v->child.pid, v->chan_fd, output_fd(v), (int)v->state, v->child.started_at,
		(unsigned long long)v->id.dev, (unsigned long long)v->id.ino,
		(long long)v->id.size, (long long)v->id.mtime.tv_sec, v->id.mtime.tv_nsec,
		(unsigned long long)v->id.hash, v->file);
}

void upgrade_exec(struct emperor *e, char **argv)
{
	int fd = memfd_create("emperor-state", 0); /* no CLOEXEC: the new image reads it */
	FILE *f = fd >= 0 ? fdopen(dup(fd), "w") : NULL;
	struct vassal *v;
	char buf[32];
	sigset_t block;

	if (!f) {
		log_errno("upgrade: cannot save the vassal table; not upgrading");
		if (fd >= 0)
			close(fd);
		return;
	}
	TAILQ_FOREACH(v, &e->vassals, link) {
		if (!child_running(&v->child))
			continue;
		write_record(f, v);
		if (v->chan_fd >= 0)
			fd_set_cloexec(v->chan_fd, 0);
		if (output_fd(v) >= 0)
			fd_set_cloexec(output_fd(v), 0);
	}
	if (fclose(f) != 0 || lseek(fd, 0, SEEK_SET) < 0) {
		log_errno("upgrade: cannot save the vassal table; not upgrading");
		close(fd);
		return;
	}
	snprintf(buf, sizeof buf, "%d", fd);
	setenv("EMPEROR_STATE_FD", buf, 1);
	sigfillset(&block);
	sigprocmask(SIG_BLOCK, &block, NULL);
	log_info("SIGUSR2: re-exec %s, keeping every vassal", e->exe);
	output_sink_drain(e, 1000); /* what stderr has not taken yet would be lost */
	execv(e->exe, argv);
	log_errno("upgrade: execv %s", e->exe);
	sigprocmask(SIG_UNBLOCK, &block, NULL);
	unsetenv("EMPEROR_STATE_FD");
	close(fd);
}

static void read_record(struct emperor *e, const char *line)
{
	int pid, chan, out, state, n = 0;
	double started;
	unsigned long long dev, ino, hash;
	long long size, sec;
	long nsec;
	struct file_id id;

	if (sscanf(line, "%d\t%d\t%d\t%d\t%lf\t%llu\t%llu\t%lld\t%lld\t%ld\t%llu\t%n", &pid,
		   &chan, &out, &state, &started, &dev, &ino, &size, &sec, &nsec, &hash, &n) < 11 ||
	    n == 0) {
		log_warn("upgrade: unreadable record '%s'", line);
		return;
	}
	id = (struct file_id){ .dev = (dev_t)dev, .ino = (ino_t)ino, .size = (off_t)size,
			       .mtime = { .tv_sec = (time_t)sec, .tv_nsec = nsec }, .hash = hash };
	struct vassal *v = vtable_adopt(e, line + n, &id, pid, chan, out, state, started);
	if (v && v->state == VASSAL_STOPPING)
		child_curse(&v->child, SIGTERM, v->stop_mercy);
	log_info("upgrade: kept %s (pid %d, %s)", line + n, pid, vtable_state_name(state));
}

int upgrade_restore(struct emperor *e)
{
	const char *s = getenv("EMPEROR_STATE_FD");
	char line[1024];
	FILE *f;

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
