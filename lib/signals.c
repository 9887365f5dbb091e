/* signals.c — the signal plumbing both binaries share (see signals.h). Signals reach
 * a process only through libev's ev_signal watchers, so a handler runs in the loop
 * like any other event and never interrupts it. */
#include "signals.h"

#include <signal.h>

#include "log.h"

void signals_start(struct ev_loop *loop, const struct signals_entry *table, size_t n,
		   signals_cb *cb, void *data)
{
	sigset_t none;

	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < n; i++) {
		ev_signal_init(table[i].w, cb, table[i].signum);
		table[i].w->data = data;
		ev_signal_start(loop, table[i].w);
	}
	/* The previous image (a vassal's re-exec, an emperor's upgrade) blocked them
	 * across its exec; the ones that arrived meanwhile are delivered now. */
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		log_errno("sigprocmask");
}

int signals_block_for_exec(void)
{
	sigset_t block;

	sigemptyset(&block);
	for (int sig = 1; sig < SIGRTMIN; sig++)
		if (sig != SIGKILL && sig != SIGSTOP && sig != SIGCHLD)
			sigaddset(&block, sig);
	return sigprocmask(SIG_BLOCK, &block, NULL);
}

int signals_unblock_all(void)
{
	sigset_t none;

	sigemptyset(&none);
	return sigprocmask(SIG_SETMASK, &none, NULL);
}

void signals_status_line(const char *name, const char *state, const struct child *c)
{
	log_info("status: %s pid %d %s up %.1fs respawns %u", name, (int)c->pid, state,
		 child_uptime(c), c->respawns);
}
