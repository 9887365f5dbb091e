/* privs.c — user/group resolution and the one-way privilege drop, rlimits,
 * no-new-privileges (see privs.h). Two drops: privs_drop() for a process dropping its
 * own privileges (a master: glibc's wrappers, every thread), privs_drop_in_child()
 * for a vfork'd child before its exec (raw system calls on a group list the parent
 * resolved: no NSS, no allocation, no signal to the parent's threads). */
#include "privs.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "parse.h"

/* A uid or gid: digits only, below (uid_t)-1 (which means "unchanged" to the kernel):
 * "4294967296" must not wrap to 0 (root), nor "-1" to 4294967295. */
static int number(const char *s, unsigned long *out)
{
	unsigned long long n;

	if (!s || parse_uint(s, (uid_t)-2, &n, NULL) < 0)
		return -1;
	*out = (unsigned long)n;
	return 0;
}

static int resolve_user(const char *user, struct privs *p, char *why, size_t len)
{
	struct passwd *pw = getpwnam(user);
	unsigned long n;

	if (!pw && number(user, &n) == 0)
		pw = getpwuid((uid_t)n);
	if (pw) {
		p->uid = pw->pw_uid;
		p->gid = pw->pw_gid;
		snprintf(p->user, sizeof p->user, "%s", pw->pw_name);
		return 0;
	}
	if (number(user, &n) == 0) { /* a uid with no passwd entry: fine, no groups */
		p->uid = (uid_t)n;
		p->gid = (gid_t)n;
		return 0;
	}
	snprintf(why, len, "user '%s': no such user", user);
	return -1;
}

int privs_resolve(const char *user, const char *group, struct privs *p, char *why, size_t len)
{
	unsigned long n;

	memset(p, 0, sizeof *p);
	p->uid = getuid();
	p->gid = getgid();
	p->set = user || group;
	if (user && resolve_user(user, p, why, len) < 0)
		return -1;
	if (group) {
		struct group *gr = getgrnam(group);
		if (gr)
			p->gid = gr->gr_gid;
		else if (number(group, &n) == 0)
			p->gid = (gid_t)n;
		else {
			snprintf(why, len, "group '%s': no such group", group);
			return -1;
		}
	}
	return 0;
}

int privs_drop(const struct privs *p, char *why, size_t len)
{
	if (!p->set || (getuid() == p->uid && geteuid() == p->uid && getgid() == p->gid))
		return 0;
	if (geteuid() != 0) {
		snprintf(why, len, "cannot become uid %d gid %d: not running as root", (int)p->uid,
			 (int)p->gid);
		return -1;
	}
	const char *user = p->user[0] ? p->user : NULL;
	struct passwd *pw = !user && p->user_of_uid ? getpwuid(p->uid) : NULL;
	if (pw)
		user = pw->pw_name;
	if ((user ? initgroups(user, p->gid) : setgroups(1, &p->gid)) < 0 ||
	    setgid(p->gid) < 0 || setuid(p->uid) < 0) {
		snprintf(why, len, "cannot become uid %d gid %d: %s", (int)p->uid, (int)p->gid,
			 strerror(errno));
		return -1;
	}
	if (getuid() != p->uid || geteuid() != p->uid || getgid() != p->gid ||
	    (p->uid != 0 && setuid(0) == 0)) {
		snprintf(why, len, "privilege drop to uid %d did not hold", (int)p->uid);
		return -1;
	}
	return 0;
}

/* The user whose groups a drop takes: p->user, else (tyrant) the name of p->uid,
 * copied into name[]; NULL for a bare uid (its group only). */
static const char *group_user(const struct privs *p, char *name, size_t len)
{
	struct passwd *pw;

	if (p->user[0])
		return p->user;
	if (!p->user_of_uid || !(pw = getpwuid(p->uid)))
		return NULL;
	snprintf(name, len, "%s", pw->pw_name);
	return name;
}

int privs_groups(const struct privs *p, gid_t **groups, int *n, char *why, size_t len)
{
	char name[256];
	const char *user = group_user(p, name, sizeof name);
	int room = user ? 32 : 1, want;
	gid_t *g = NULL, *grown;

	for (int tries = 0; tries < 8; tries++) {
		if (!(grown = realloc(g, (size_t)room * sizeof *g)))
			break;
		g = grown;
		want = room;
		if (!user) {
			g[0] = p->gid;
			want = 1;
		}
		if (!user || getgrouplist(user, p->gid, g, &want) >= 0) {
			*groups = g;
			*n = want;
			return 0;
		}
		room = want > room ? want : room * 2; /* too small: want is what it needs */
	}
	free(g);
	snprintf(why, len, "the groups of user %s: %s", user, strerror(errno ? errno : ENOMEM));
	return -1;
}

/* The raw system calls: glibc's set*id() would also signal the other threads of the
 * process whose memory a vfork'd child shares (its parent's), through that memory. */
int privs_drop_in_child(const struct privs *p, const gid_t *groups, int n, const char **what)
{
	uid_t uid = p->uid;
	gid_t gid = p->gid;

	if (!p->set || (getuid() == uid && geteuid() == uid && getgid() == gid))
		return 0;
	*what = "changing its user: not running as root";
	if (geteuid() != 0) {
		errno = EPERM;
		return -1;
	}
	*what = "setgroups";
	if (syscall(SYS_setgroups, (size_t)n, groups) < 0)
		return -1;
	*what = "setresgid";
	if (syscall(SYS_setresgid, gid, gid, gid) < 0)
		return -1;
	*what = "setresuid";
	if (syscall(SYS_setresuid, uid, uid, uid) < 0)
		return -1;
	*what = "the privilege drop did not hold";
	if (getuid() != uid || geteuid() != uid || getgid() != gid ||
	    (uid != 0 && syscall(SYS_setresuid, 0, 0, 0) == 0)) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

static void limit(int resource, const char *name, long long value,
		  void (*failed)(const char *what, void *arg), void *arg)
{
	struct rlimit rl;

	if (value < 0)
		return;
	rl.rlim_cur = rl.rlim_max = value == CFG_LIMIT_UNLIMITED ? RLIM_INFINITY : (rlim_t)value;
	if (setrlimit(resource, &rl) < 0)
		failed(name, arg);
}

void privs_limits(const struct cfg_limits *l, void (*failed)(const char *what, void *arg),
		  void *arg)
{
	limit(RLIMIT_NOFILE, "limits.nofile", l->nofile, failed, arg);
	limit(RLIMIT_NPROC, "limits.nproc", l->nproc, failed, arg);
	limit(RLIMIT_CORE, "limits.core", l->core, failed, arg);
	limit(RLIMIT_AS, "limits.as", l->as, failed, arg);
	limit(RLIMIT_CPU, "limits.cpu", l->cpu, failed, arg);
}

int privs_no_new_privs(void)
{
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}
