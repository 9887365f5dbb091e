/* demand.h — an on-demand vassal's listening sockets, held by the emperor
 * (emperor/demand.c). They are set up with the master's own code (vsock_adopt: the same
 * address matching, backlog, unix mode and owner), watched by one ev_io each while no
 * master runs, handed to the master at fds 3.. (LISTEN_FDS) when a connection wakes
 * it, kept while it runs (unwatched) and after it stops, and closed (unix files
 * removed) when the record goes. A changed config is applied at the next arm: the
 * sockets whose address is unchanged stay open, the others are bound or closed. */
#ifndef EMPEROR_DEMAND_H
#define EMPEROR_DEMAND_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

struct config;
struct demand;
struct strbuf;

/* A holder calling on_wake(arg) at the first readable event of an armed socket (it
 * is disarmed first). NULL when out of memory. */
struct demand *demand_new(struct ev_loop *loop, void (*on_wake)(void *arg), void *arg);
/* The sockets cfg names become the wanted set (copied); nothing is bound yet. 0, or
 * -1 when out of memory. */
int demand_want(struct demand *d, const struct config *cfg);
/* Makes the held sockets the wanted set (keeping those with the same address, then
 * taking those handed across an upgrade, then binding) without watching them (a
 * running master's, after an upgrade). 0, or -1 when one could not be bound (logged;
 * the others are held). */
int demand_hold(struct demand *d);
/* The same, and watches them. */
int demand_arm(struct demand *d);
/* Stops watching; the sockets stay open (a master serves them). */
void demand_disarm(struct demand *d);
/* The held sockets' fds and "name:name" for LISTEN_FDNAMES; valid until the next
 * demand_arm or demand_free. */
size_t demand_fds(const struct demand *d, const int **fds, const char **names);
/* An emperor upgrade (upgrade.c): the held fds kept open across the exec (keep) or
 * close-on-exec again; with keep, each is appended to list ("3,7,..."). 0, or -1 if
 * an fcntl failed. */
int demand_keep_across_exec(const struct demand *d, bool keep, struct strbuf *list);
/* In the new image, before the first scan: the fds EMPEROR_DEMAND_FDS names, held
 * for the records to take by address as each is set up (demand_hold, demand_arm);
 * once every record of that scan has been (emperor.c), the ones none took are closed.
 * demand_handed_left: some are still held. */
void demand_handed_take(void);
bool demand_handed_left(void);
void demand_handed_close(void);
#define DEMAND_HANDED_VAR "EMPEROR_DEMAND_FDS"

/* Closes every socket and removes unix socket files. d may be NULL. */
void demand_free(struct demand *d);

#endif
