/* test_relay.c — tests of lib/relay.c: lines written in pieces by two children into
 * their own pipes leave whole, one write each, never mixed; a line longer than the
 * buffer is cut into lines of its own; an unfinished last line is passed on when the
 * pipe closes; a sink that cannot keep up never blocks the loop: lines wait in a
 * bounded queue, the rest are dropped and counted; a write error is kept (a full disk)
 * and every lost line counted. Pipes and one loop, no processes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay.h"
#include "util.h"

struct fixture {
	struct ev_loop *loop;
	struct relay_sink sink;
	int out[2];                 /* the sink writes into out[1]; the test reads out[0] */
	struct relay_pipe a, b;
	int a_in, b_in;             /* the children's ends */
};

static int setup(void **state)
{
	static struct fixture f;

	f = (struct fixture){ .loop = ev_default_loop(0) };
	assert_int_equal(pipe2(f.out, O_CLOEXEC), 0);
	assert_int_equal(relay_sink_open(&f.sink, f.loop, f.out[1]), 0);
	relay_pipe_init(&f.a);
	relay_pipe_init(&f.b);
	assert_int_equal(relay_pipe_open(&f.a, &f.sink, &f.a_in), 0);
	assert_int_equal(relay_pipe_open(&f.b, &f.sink, &f.b_in), 0);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	relay_pipe_close(&f->a);
	relay_pipe_close(&f->b);
	relay_sink_close(&f->sink);
	close(f->out[0]), close(f->out[1]);
	if (f->a_in >= 0)
		close(f->a_in);
	if (f->b_in >= 0)
		close(f->b_in);
	return 0;
}

/* Lets the loop handle what is pending (a few rounds, never waiting). */
static void spin(struct fixture *f)
{
	for (int i = 0; i < 8; i++)
		ev_run(f->loop, EVRUN_NOWAIT);
}

static void put(int fd, const char *s)
{
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* Everything the sink wrote so far (non-blocking read), NUL-terminated, malloc'd. */
static char *drain_out(struct fixture *f, size_t *len)
{
	size_t cap = 1 << 20;
	char *buf = malloc(cap);
	ssize_t n;

	assert_non_null(buf);
	*len = 0;
	assert_int_equal(fd_set_nonblock(f->out[0], 1), 0);
	while ((n = read(f->out[0], buf + *len, cap - 1 - *len)) > 0)
		*len += (size_t)n;
	buf[*len] = '\0';
	return buf;
}

static void test_pieces_of_two_children_never_mix(void **state)
{
	struct fixture *f = *state;
	size_t len;
	char *got;

	put(f->a_in, "alpha one ");
	spin(f);
	put(f->b_in, "beta ");
	spin(f);
	put(f->a_in, "two\nalpha ");
	spin(f);
	put(f->b_in, "one\n");
	spin(f);
	put(f->a_in, "three\n");
	spin(f);
	got = drain_out(f, &len);
	assert_string_equal(got, "alpha one two\nbeta one\nalpha three\n");
	free(got);
}

static void test_long_line_is_cut_into_lines(void **state)
{
	struct fixture *f = *state;
	size_t n = 10000, len;
	char *line = malloc(n + 2), *got, *want = malloc(n + 8);

	assert_non_null(line);
	assert_non_null(want);
	memset(line, 'x', n);
	strcpy(line + n, "\n");
	assert_int_equal(write(f->a_in, line, n + 1), (ssize_t)n + 1);
	for (int i = 0; i < 8; i++)
		spin(f);
	got = drain_out(f, &len);
	/* pieces of RELAY_LINE_MAX - 1 bytes, each a line */
	memset(want, 'x', n + 3);
	want[RELAY_LINE_MAX - 1] = '\n';
	want[2 * RELAY_LINE_MAX - 1] = '\n';
	want[n + 2] = '\n';
	want[n + 3] = '\0';
	assert_int_equal(len, n + 3);
	assert_string_equal(got, want);
	free(got), free(line), free(want);
}

static void test_unfinished_line_passed_on_at_close(void **state)
{
	struct fixture *f = *state;
	size_t len;
	char *got;

	put(f->a_in, "no newline at the end");
	close(f->a_in);
	f->a_in = -1;
	spin(f); /* EOF: the pipe closes itself */
	assert_int_equal(f->a.fd, -1);
	got = drain_out(f, &len);
	assert_string_equal(got, "no newline at the end\n");
	free(got);
}

/* Nobody reads the sink's pipe: the loop goes on, lines queue up to the bound, the
 * rest are counted as dropped; once it drains, every line that arrives is whole. */
static void test_full_sink_never_blocks_and_counts_drops(void **state)
{
	struct fixture *f = *state;
	char line[3001];
	size_t len, lines = 0;
	char *got;

	memset(line, 'y', 2999);
	strcpy(line + 2999, "\n");
	assert_int_equal(fd_set_nonblock(f->a_in, 1), 0);
	for (int i = 0; i < 200; i++) { /* 600 KB: far past the pipe and the queue */
		if (write(f->a_in, line, 3000) != 3000)
			break;
		spin(f);
	}
	spin(f);
	assert_true(f->sink.queued > 0);
	assert_true(f->sink.queued <= RELAY_QUEUE_MAX);
	assert_true(f->sink.dropped_lines > 0);
	/* the reader catches up: the queue flushes (bounded rounds) */
	for (int round = 0; round < 10 && (round == 0 || f->sink.queued > 0); round++) {
		got = drain_out(f, &len);
		assert_int_equal(len % 3000, 0); /* only whole lines, one write each */
		for (char *p = got; p < got + len; p += 3000, lines++)
			assert_memory_equal(p, line, 3000);
		free(got);
		spin(f);
	}
	assert_int_equal(f->sink.queued, 0);
	assert_int_equal(f->sink.dropped_lines, 0); /* reported (logged) and reset */
	got = drain_out(f, &len);
	assert_int_equal(len % 3000, 0);
	lines += len / 3000;
	free(got);
	assert_true(lines >= RELAY_QUEUE_MAX / 3000); /* the queue's lines came through */
}

static size_t written_total;

static void count_written(struct relay_sink *s, size_t n)
{
	(void)s;
	written_total += n;
}

/* A sink on /dev/full (a full disk): every line is lost and counted, the error kept;
 * a sink that writes calls on_write with what it wrote and clears the error. */
static void test_write_errors_kept_and_counted(void **state)
{
	struct fixture *f = *state;
	struct relay_sink full;
	int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(relay_sink_open(&full, f->loop, fd), 0);
	relay_sink_write(&full, "one\n", 4);
	relay_sink_write(&full, "two\n", 4);
	assert_int_equal(full.last_errno, ENOSPC);
	assert_int_equal(full.lost_lines, 2);
	relay_sink_close(&full);
	close(fd);

	written_total = 0;
	f->sink.on_write = count_written;
	f->sink.last_errno = EIO;
	relay_sink_write(&f->sink, "three\n", 6);
	assert_int_equal(written_total, 6);
	assert_int_equal(f->sink.last_errno, 0);
	assert_int_equal(f->sink.lost_lines, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pieces_of_two_children_never_mix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_line_is_cut_into_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_errors_kept_and_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unfinished_line_passed_on_at_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_sink_never_blocks_and_counts_drops, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
