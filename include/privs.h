/* privs.h — privilege changes, in one place: who a vassal runs as (user:, group:),
 * the resource limits every child gets (limits:), no-new-privileges. Dropping is
 * one way: after privs_drop() there is no way back to root, and that is checked. */
#ifndef EMPEROR_PRIVS_H
#define EMPEROR_PRIVS_H

#include <stdbool.h>
#include <sys/types.h>

#include "config.h"

struct privs {
	uid_t uid;
	gid_t gid;
	char user[64];              /* for initgroups(); empty for a bare uid */
	bool user_of_uid;           /* user[] empty: the groups of uid's name (tyrant mode),
				     * looked up by privs_groups() in the emperor at each spawn */
	bool set;                   /* user: or group: was given */
};

/* Resolves user/group names or numbers; 0, or -1 with a reason in why. */
int privs_resolve(const char *user, const char *group, struct privs *p, char *why, size_t len);
/* Becomes p (as root: initgroups, setgid, setuid, then checks setuid(0) fails).
 * Already being p is fine; anything else without root is an error. For a process
 * dropping its own privileges (glibc's wrappers: NSS, every thread), never in a child
 * before exec: that is privs_drop_in_child(). */
int privs_drop(const struct privs *p, char *why, size_t len);
/* In the parent, before a child's privs_drop_in_child(): the supplementary groups
 * initgroups() would give (p's user; for a bare uid, its gid only), looked up in NSS,
 * into a malloc'd list. 0, or -1 with why. */
int privs_groups(const struct privs *p, gid_t **groups, int *n, char *why, size_t len);
/* In a vfork'd child before exec: becomes p with those groups by raw system calls
 * (setgroups, setresgid, setresuid; the checks of privs_drop()). 0, or -1 with errno
 * and *what naming the step (a string literal). */
int privs_drop_in_child(const struct privs *p, const gid_t *groups, int n, const char **what);
/* setrlimit for each limit that is set; each failure calls failed("limits.NAME", arg)
 * with errno set. System calls only: safe in a vfork'd child. */
void privs_limits(const struct cfg_limits *l, void (*failed)(const char *what, void *arg),
		  void *arg);
/* PR_SET_NO_NEW_PRIVS: exec can never grant privileges (setuid bits, caps). */
int privs_no_new_privs(void);

#endif
