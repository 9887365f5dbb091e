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
	bool user_of_uid;           /* user[] empty: initgroups() for uid's name, looked up
				     * by privs_drop() in the child (the emperor's loop never
				     * waits on NSS) */
	bool set;                   /* user: or group: was given */
};

/* Resolves user/group names or numbers; 0, or -1 with a reason in why. */
int privs_resolve(const char *user, const char *group, struct privs *p, char *why, size_t len);
/* Becomes p (as root: initgroups, setgid, setuid, then checks setuid(0) fails).
 * Already being p is fine; anything else without root is an error. */
int privs_drop(const struct privs *p, char *why, size_t len);
/* setrlimit for each limit that is set; failures are logged. In a child. */
void privs_limits(const struct cfg_limits *l);
/* PR_SET_NO_NEW_PRIVS: exec can never grant privileges (setuid bits, caps). */
int privs_no_new_privs(void);

#endif
