/* relay.h — children's output relayed to ours one whole line at a time. Each child
 * writes into a pipe of its own (a relay_pipe); the parent's loop reads it without
 * blocking and hands every complete line to a relay_sink, which writes it, newline
 * included, with one write(2): lines of different children never mix, whatever they
 * write and however they cut it. A line longer than RELAY_LINE_MAX - 1 bytes is cut,
 * its pieces leaving as lines of their own, in order. The sink never blocks the loop
 * either: a pipe or socket is written without blocking, what cannot be written yet
 * waits in a bounded queue, and what does not fit there is dropped and counted (the
 * count is logged once the output drains). */
#ifndef EMPEROR_RELAY_H
#define EMPEROR_RELAY_H

#include <ev.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#define RELAY_LINE_MAX  PIPE_BUF     /* a line, newline included: one atomic pipe write */
#define RELAY_QUEUE_MAX (64 * 1024)  /* lines waiting for a full sink */
#define RELAY_READS_MAX 16           /* reads of one pipe per event: fair to the others */

struct relay_sink {
	struct ev_loop *loop;
	int fd;                     /* where lines go */
	bool own_fd;                /* fd is our non-blocking reopening of the target */
	bool is_socket;             /* written with send(MSG_DONTWAIT) */
	ev_io writable;             /* armed while lines are queued */
	size_t queued;
	unsigned long dropped_lines, dropped_bytes;
	unsigned long lost_lines;   /* every line dropped since open (the above are reset) */
	int last_errno;             /* of the last failed write, 0 after one that wrote */
	/* called after each write that wrote n > 0 bytes (a log file's rotation), or NULL */
	void (*on_write)(struct relay_sink *s, size_t n);
	void *data;
	/* set after relay_sink_open(): each line is written as one JSON object of this
	 * vassal (log.format: json); empty: as it came */
	char json_vassal[256];
	char queue[RELAY_QUEUE_MAX];
};

struct relay_pipe {
	struct relay_sink *sink;
	int fd;                     /* the read end, non-blocking; -1 when closed */
	ev_io readable;
	size_t len;                 /* bytes of an unfinished line in buf */
	char buf[RELAY_LINE_MAX];
};

/* Lines go to target (our stdout: a pipe to the emperor, a log file, a socket...). A
 * pipe is reopened through /proc/self/fd non-blocking, so only our writes stop
 * blocking, not those of other processes sharing it. 0, or -1 (logged). */
int relay_sink_open(struct relay_sink *s, struct ev_loop *loop, int target);
/* Writes what is queued if it can without blocking, reports drops, releases. */
void relay_sink_close(struct relay_sink *s);
/* One line, its newline included, at most RELAY_LINE_MAX bytes. */
void relay_sink_write(struct relay_sink *s, const char *line, size_t len);

/* A new pipe into sink; *child_end is the write end for the child's stdout/stderr
 * (close-on-exec; ours to close once the child is spawned). 0, or -1 (logged). */
int relay_pipe_open(struct relay_pipe *p, struct relay_sink *sink, int *child_end);
/* Reads what is already in the pipe (bounded), passes on an unfinished last line,
 * closes. A closed pipe (fd -1) is fine. */
void relay_pipe_close(struct relay_pipe *p);
/* Initialises p as closed. */
void relay_pipe_init(struct relay_pipe *p);

#endif
