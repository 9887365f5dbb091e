/* tyrant.c — tyrant mode (`emperor --tyrant`): each vassal runs as the owner of its
 * file, so whoever may write a file into the directory gets exactly their own
 * rights. The emperor (root) opens the file itself only after its owner checks, and
 * reads it through that fd, checked again with fstat: a file it refuses is never read
 * and nothing of its content reaches the log or `emperorctl status`. Refused, with
 * the reason logged: a file owned by root (unless --tyrant-allow-root), a file or
 * directory writable by group or others (as sshd's StrictModes), a symlink owned by
 * neither root nor the owner of the file it points to (a user's link to
 * /etc/shadow), and with --tyrant-nofollow any symlink. The drop itself happens in the child
 * before exec (lib/privs.c). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "emperor.h"
#include "privs.h"
#include "tyrant.h"

static int loose(const char *what, const char *path, const struct stat *st, char *why, size_t len)
{
	if (!(st->st_mode & (S_IWGRP | S_IWOTH)))
		return 0;
	snprintf(why, len, "%s %s is writable by %s (mode %04o)", what, path,
		 st->st_mode & S_IWOTH ? "others" : "its group", (unsigned)(st->st_mode & 07777));
	return -1;
}

/* The directories: the watched one, and the one the opened file really is in. */
static int dirs_strict(const struct emperor *e, int fd, char *why, size_t len)
{
	char link[64], real[PATH_MAX];
	struct stat dst;
	ssize_t n;

	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	n = readlink(link, real, sizeof real - 1);
	if (n < 0) {
		snprintf(why, len, "%s: %s", link, strerror(errno));
		return -1;
	}
	real[n] = '\0';
	if (stat(e->dir, &dst) < 0 || loose("directory", e->dir, &dst, why, len) < 0)
		return -1;
	const char *dir = dirname(real);
	if (stat(dir, &dst) < 0) {
		snprintf(why, len, "%s: cannot stat: %s", dir, strerror(errno));
		return -1;
	}
	return loose("directory", dir, &dst, why, len);
}

/* The checks on the link (lst) and on the file opened through it (st). */
static int owner_checks(const struct vassal *v, const struct stat *lst, const struct stat *st,
			char *why, size_t len)
{
	if (!S_ISREG(st->st_mode)) {
		snprintf(why, len, "%s is not a regular file", v->path);
		return -1;
	}
	if (S_ISLNK(lst->st_mode) && lst->st_uid != st->st_uid && lst->st_uid != 0) {
		snprintf(why, len, "%s is a symlink owned by uid %d to a file owned by uid %d: "
			 "a link must have its file's owner (or root)", v->path,
			 (int)lst->st_uid, (int)st->st_uid);
		return -1;
	}
	if (!S_ISLNK(lst->st_mode) && (lst->st_dev != st->st_dev || lst->st_ino != st->st_ino)) {
		snprintf(why, len, "%s was replaced while being checked", v->path);
		return -1;
	}
	return loose("file", v->path, st, why, len);
}

static int not_root(const struct emperor *e, const struct vassal *v, const struct stat *st,
		    char *why, size_t len)
{
	if ((st->st_uid != 0 && st->st_gid != 0) || e->opts.tyrant_allow_root)
		return 0;
	snprintf(why, len, "%s is owned by root (uid %d gid %d): refused without "
		 "--tyrant-allow-root", v->path, (int)st->st_uid, (int)st->st_gid);
	return -1;
}

int tyrant_open(const struct emperor *e, const struct vassal *v, struct privs *p, char *why,
		size_t len)
{
	int nofollow = e->opts.tyrant_nofollow ? O_NOFOLLOW : 0;
	struct stat lst, st;
	int fd;

	if (lstat(v->path, &lst) < 0) {
		snprintf(why, len, "%s: cannot stat: %s", v->path, strerror(errno));
		return -1;
	}
	if (S_ISLNK(lst.st_mode) && nofollow) {
		snprintf(why, len, "%s is a symlink (--tyrant-nofollow)", v->path);
		return -1;
	}
	fd = open(v->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | nofollow);
	if (fd < 0) {
		snprintf(why, len, "%s: cannot open: %s", v->path,
			 errno == ELOOP ? "a symlink (--tyrant-nofollow)" : strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(why, len, "%s: cannot stat: %s", v->path, strerror(errno));
		close(fd);
		return -1;
	}
	if (owner_checks(v, &lst, &st, why, len) < 0 || dirs_strict(e, fd, why, len) < 0 ||
	    not_root(e, v, &st, why, len) < 0) {
		close(fd);
		return -1;
	}
	memset(p, 0, sizeof *p);
	p->uid = st.st_uid;
	p->gid = st.st_gid;
	p->user_of_uid = true; /* its name (for initgroups) is looked up in the child */
	p->set = true;
	return fd;
}

int tyrant_config_ok(const struct emperor *e, const struct vassal *v, const struct config *cfg,
		     char *why, size_t len)
{
	char reason[400], *shown;

	/* The emperor binds an on-demand vassal's sockets itself, as root: for another
	 * owner that would be a privileged port or a socket file anywhere (an old one
	 * unlinked first) that the owner could not bind. */
	if (cfg->on_demand && v->owner && v->owner->uid != 0) {
		snprintf(why, len, "%s: on-demand is refused in tyrant mode for a file not owned by "
			 "root (the emperor would bind its sockets as root)", v->path);
		return -1;
	}
	if (!cfg->has_cgroup || !cfg->cgroup.parent ||
	    cgroup_parent_check(&e->cg, cfg->cgroup.parent, reason, sizeof reason) == 0)
		return 0;
	shown = config_printable(cfg->cgroup.parent);
	snprintf(why, len, "%s: cgroup.parent \"%.200s\" is refused: %s", v->path,
		 shown ? shown : "?", reason);
	free(shown);
	return -1;
}
