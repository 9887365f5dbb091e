/* privs.c — user/group resolution and the one-way privilege drop, rlimits,
 * no-new-privileges (see privs.h). */
#include "privs.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log.h"
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

static void limit(int resource, const char *name, long long value)
{
	struct rlimit rl;

	if (value < 0)
		return;
	rl.rlim_cur = rl.rlim_max = value == CFG_LIMIT_UNLIMITED ? RLIM_INFINITY : (rlim_t)value;
	if (setrlimit(resource, &rl) < 0)
		log_errno("limits.%s = %lld", name, value);
}

void privs_limits(const struct cfg_limits *l)
{
	limit(RLIMIT_NOFILE, "nofile", l->nofile);
	limit(RLIMIT_NPROC, "nproc", l->nproc);
	limit(RLIMIT_CORE, "core", l->core);
	limit(RLIMIT_AS, "as", l->as);
	limit(RLIMIT_CPU, "cpu", l->cpu);
}

int privs_no_new_privs(void)
{
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}
