/* reexec.h — the start half of a graceful reload: what one master image hands the
 * next across execv, and the next image's pick-up of it. Handed over: the listening
 * sockets, gateway and mule-farm sockets at fds 3.. (LISTEN_FDS, LISTEN_PID,
 * LISTEN_FDNAMES), the emperor channel (EMPEROR_FD), a memfd with the exact config
 * text that was validated (VASSAL_CONFIG_FD), the survive-reload daemons
 * (VASSAL_DAEMONS) and the reload state (VASSAL_RELOAD_STATE). The new image removes
 * every one of these variables before it spawns a child. */
#ifndef EMPEROR_REEXEC_H
#define EMPEROR_REEXEC_H

#include <stdbool.h>
#include <stddef.h>

#include "master.h"

/* The reload state that crosses the exec, as VASSAL_RELOAD_STATE:
 * "generation=N started=SECONDS pending=0|1[ workers=N]". */
struct reexec_state {
	unsigned generation;        /* of this image (1 on a fresh start) */
	double reload_started;      /* mono_now() when the reload that made it began */
	bool after_reexec;          /* made by a re-exec: its start ends a reload */
	bool reload_pending;        /* a reload was asked for meanwhile: it runs next */
	char *config_text;          /* the validated config, or NULL: read the file */
	size_t config_len;
	char *daemons;              /* survive-reload daemons "name=pid,...", or NULL */
	int workers_target;         /* a scaled vassal's worker count (scale.h); 0 = none */
};

/* Picks up what the previous image handed over (or a fresh start's defaults) and
 * removes it from the environment. */
void reexec_restore(struct reexec_state *st);
void reexec_state_fini(struct reexec_state *st);
/* The next image: m's sockets and channel, the state, the validated config text (or
 * NULL) and the daemons' handover (or NULL). Signals are blocked by the caller. On
 * failure it logs why and returns -1 (the fds may have moved: the caller exits). */
int reexec_exec(struct master *m, const struct reexec_state *next);

#endif
