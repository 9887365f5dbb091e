/* tyrant.c — tyrant mode (`emperor --tyrant`): each vassal runs as the owner of its
 * file, so whoever may write a file into the directory gets exactly their own
 * rights. Refused, with the reason logged: a file owned by root (unless
 * --tyrant-allow-root), a file or directory writable by group or others (as sshd's
 * StrictModes), and with --tyrant-nofollow a file that is a symlink. The drop itself
 * happens in the child before exec (lib/privs.c). */
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "emperor.h"

static int loose(const char *what, const char *path, const struct stat *st, char *why, size_t len)
{
	if (!(st->st_mode & (S_IWGRP | S_IWOTH)))
		return 0;
	snprintf(why, len, "%s %s is writable by %s (mode %04o)", what, path,
		 st->st_mode & S_IWOTH ? "others" : "its group", (unsigned)(st->st_mode & 07777));
	return -1;
}

int tyrant_owner(const struct emperor *e, const struct vassal *v, struct privs *p, char *why,
		 size_t len)
{
	char real[PATH_MAX], dir[PATH_MAX];
	struct stat lst, st, dst;

	if (lstat(v->path, &lst) < 0 || stat(v->path, &st) < 0 || !realpath(v->path, real)) {
		snprintf(why, len, "%s: cannot stat", v->path);
		return -1;
	}
	if (S_ISLNK(lst.st_mode) && e->opts.tyrant_nofollow) {
		snprintf(why, len, "%s is a symlink (--tyrant-nofollow)", v->path);
		return -1;
	}
	snprintf(dir, sizeof dir, "%s", real);
	if (loose("file", real, &st, why, len) < 0 || stat(e->dir, &dst) < 0 ||
	    loose("directory", e->dir, &dst, why, len) < 0 || stat(dirname(dir), &dst) < 0 ||
	    loose("directory", dir, &dst, why, len) < 0)
		return -1;
	if ((st.st_uid == 0 || st.st_gid == 0) && !e->opts.tyrant_allow_root) {
		snprintf(why, len, "%s is owned by root (uid %d gid %d): refused without "
			 "--tyrant-allow-root", v->path, (int)st.st_uid, (int)st.st_gid);
		return -1;
	}
	struct passwd *pw = getpwuid(st.st_uid);
	memset(p, 0, sizeof *p);
	p->uid = st.st_uid;
	p->gid = st.st_gid;
	p->set = true;
	if (pw)
		snprintf(p->user, sizeof p->user, "%s", pw->pw_name);
	return 0;
}
