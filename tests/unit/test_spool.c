/* test_spool.c — unit tests of vassal/spool.c, the spool task file: spool_parse on
 * good and bad headers (@at, @priority, @attempts, keys, the body after the empty
 * line), spool_enqueue + spool_parse round trips, spool_rewrite (keys as written and
 * the body kept, @at/@attempts updated), the `vassal spool` command line, and that no
 * hidden temp file is ever left in the spool directory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../support/support.h"
#include "spool.h"
#include "util.h"

static const char *env_get(char **env, const char *key)
{
	size_t n = strlen(key);

	for (size_t i = 0; env && env[i]; i++)
		if (strncmp(env[i], key, n) == 0 && env[i][n] == '=')
			return env[i] + n + 1;
	return NULL;
}

static double wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_str(const char *text, struct spool_task *t, char *why, size_t wl)
{
	return spool_parse(text, strlen(text), t, why, wl);
}

/* Parsing must fail, with a reason that contains want. */
static void expect_bad(const char *text, const char *want)
{
	struct spool_task t;
	char why[200] = "";

	if (parse_str(text, &t, why, sizeof why) != -1) {
		fprintf(stderr, "parsed, expected a failure: \"%s\"\n", text);
		spool_task_fini(&t);
		fail();
	}
	if (!strstr(why, want)) {
		fprintf(stderr, "\"%s\": why \"%s\", expected \"%s\"\n", text, why, want);
		fail();
	}
	assert_null(t.env);
	assert_null(t.keys);
}

/* The names in dir, sorted into one string "a,b,c" (hidden ones included). */
static char *dir_listing(const char *dir)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort);
	char *out = calloc(1, 4096);

	assert_true(n >= 0);
	for (int i = 0; i < n; i++) {
		if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, "..")) {
			if (*out)
				strcat(out, ",");
			strncat(out, names[i]->d_name, 4096 - strlen(out) - 2);
		}
		free(names[i]);
	}
	free(names);
	return out;
}

static char *read_all(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *buf = malloc(SPOOL_MAX_TASK + 1);
	ssize_t n;

	assert_true(fd >= 0);
	assert_non_null(buf);
	*len = 0;
	while ((n = read(fd, buf + *len, SPOOL_MAX_TASK + 1 - *len)) > 0)
		*len += (size_t)n;
	close(fd);
	return buf;
}

/* ---- spool_parse ---------------------------------------------------------------- */

static void test_parse_full_header_and_body(void **state)
{
	const char text[] = "@at=1700000000.250\n@priority=-7\n@attempts=2\nto=bob@example.org\n"
			    "Subject_1=hi = there\nempty=\n\nbody line 1\nnot=a header\n\nend";
	struct spool_task t;
	char why[200];

	(void)state;
	assert_int_equal(spool_parse(text, sizeof text - 1, &t, why, sizeof why), 0);
	assert_true(fabs(t.at - 1700000000.25) < 1e-6);
	assert_int_equal(t.priority, -7);
	assert_int_equal(t.attempts, 2);
	assert_int_equal(strv_len(t.env), 3);
	assert_string_equal(env_get(t.env, "SPOOL_TO"), "bob@example.org");
	assert_string_equal(env_get(t.env, "SPOOL_SUBJECT_1"), "hi = there");
	assert_string_equal(env_get(t.env, "SPOOL_EMPTY"), "");
	assert_int_equal(strv_len(t.keys), 3);
	assert_string_equal(t.keys[0], "to=bob@example.org");
	assert_string_equal(t.keys[1], "Subject_1=hi = there");
	assert_string_equal(t.keys[2], "empty=");
	assert_int_equal(t.body_len, strlen("body line 1\nnot=a header\n\nend"));
	assert_memory_equal(t.body, "body line 1\nnot=a header\n\nend", t.body_len);
	spool_task_fini(&t);
	assert_null(t.env);
}

static void test_parse_defaults_and_no_body(void **state)
{
	struct spool_task t;
	char why[200];

	(void)state;
	/* Nothing at all: due now, priority 0, never run, no keys, no body. */
	assert_int_equal(parse_str("", &t, why, sizeof why), 0);
	assert_true(t.at == 0 && t.priority == 0 && t.attempts == 0);
	assert_int_equal(strv_len(t.env), 0);
	assert_int_equal(t.body_len, 0);
	spool_task_fini(&t);
	/* Headers without the empty line: no body; a last line without '\n' counts. */
	assert_int_equal(parse_str("a=1\nb=2", &t, why, sizeof why), 0);
	assert_string_equal(env_get(t.env, "SPOOL_B"), "2");
	assert_int_equal(t.body_len, 0);
	spool_task_fini(&t);
	/* Only the empty line: an empty body. */
	assert_int_equal(parse_str("\n", &t, why, sizeof why), 0);
	assert_int_equal(strv_len(t.keys), 0);
	assert_int_equal(t.body_len, 0);
	spool_task_fini(&t);
	/* A body that is binary (NUL bytes) is kept whole. */
	const char bin[] = "k=v\n\n\0\1\2";
	assert_int_equal(spool_parse(bin, sizeof bin - 1, &t, why, sizeof why), 0);
	assert_int_equal(t.body_len, 3);
	assert_memory_equal(t.body, "\0\1\2", 3);
	spool_task_fini(&t);
}

static void test_parse_bad_headers(void **state)
{
	char big[5000];

	(void)state;
	expect_bad("to=bob\nno equals sign\n\nbody", "header line 'no equals sign' has no '='");
	expect_bad("to-x=1\n", "bad key 'to-x'");
	expect_bad("a b=1\n", "bad key 'a b'");
	expect_bad("=value\n", "bad key ''");
	expect_bad("caf\xc3\xa9=1\n", "bad key");
	expect_bad("@at=soon\n", "bad '@at' value 'soon'");
	expect_bad("@at=-5\n", "bad '@at'");
	expect_bad("@at=inf\n", "bad '@at'");
	expect_bad("@at=1e300\n", "bad '@at'");
	expect_bad("@at=12abc\n", "bad '@at'");
	expect_bad("@priority=high\n", "bad '@priority' value 'high'");
	expect_bad("@priority=99999999\n", "bad '@priority'");
	expect_bad("@priority=\n", "bad '@priority'");
	expect_bad("@attempts=-1\n", "bad '@attempts'");
	expect_bad("@attempts=1.5\n", "bad '@attempts'");
	expect_bad("@retries=1\n", "bad '@retries'");
	expect_bad("@=1\n", "bad '@'");
	/* A key longer than 64 characters, a value of 4 KiB or more. */
	memset(big, 'k', 65);
	snprintf(big + 65, sizeof big - 65, "=v\n");
	expect_bad(big, "bad key");
	snprintf(big, sizeof big, "k=");
	memset(big + 2, 'v', 4096);
	big[4098] = '\0';
	expect_bad(big, "too long");
	/* A NUL byte in a header line. */
	{
		const char nul[] = "k=a\0b\n\nbody";
		struct spool_task t;
		char why[200] = "";
		assert_int_equal(spool_parse(nul, sizeof nul - 1, &t, why, sizeof why), -1);
		assert_non_null(strstr(why, "not text"));
	}
}

/* ---- spool_enqueue, spool_rewrite ------------------------------------------------ */

static void test_enqueue_parse_round_trip(void **state)
{
	char *dir = sup_tmpdir(), id[96], *keys[] = { "to=bob", "Mixed_Case=a=b c", NULL };
	char *listing, *path, *text, want[160], why[200];
	const char body[] = "line 1\n\nline 3 with=equals\n";
	struct spool_task t;
	size_t len;

	(void)state;
	assert_non_null(dir);
	assert_int_equal(spool_enqueue(dir, 1800000000.5, 9, 1, keys, body, sizeof body - 1, id,
				       sizeof id), 0);
	listing = dir_listing(dir);
	snprintf(want, sizeof want, "%s.task", id);
	assert_string_equal(listing, want); /* the task and nothing else: no .tmp- left */
	path = sup_path(dir, want);
	text = read_all(path, &len);
	assert_int_equal(spool_parse(text, len, &t, why, sizeof why), 0);
	assert_true(fabs(t.at - 1800000000.5) < 1e-3);
	assert_int_equal(t.priority, 9);
	assert_int_equal(t.attempts, 1);
	assert_int_equal(strv_len(t.keys), 2);
	assert_string_equal(t.keys[0], "to=bob");
	assert_string_equal(t.keys[1], "Mixed_Case=a=b c");
	assert_string_equal(env_get(t.env, "SPOOL_MIXED_CASE"), "a=b c");
	assert_int_equal(t.body_len, sizeof body - 1);
	assert_memory_equal(t.body, body, t.body_len);
	/* The header is what docs/spooler.md shows. */
	assert_int_equal(strncmp(text, "@at=1800000000.500\n@priority=9\n@attempts=1\nto=bob\n"
				 "Mixed_Case=a=b c\n\nline 1\n", 60), 0);
	spool_task_fini(&t);
	free(text);

	/* Ids are unique and sort in enqueue order. */
	char id2[96];
	assert_int_equal(spool_enqueue(dir, 0, 0, 0, NULL, "", 0, id2, sizeof id2), 0);
	assert_true(strcmp(id, id2) < 0);
	free(listing);
	listing = dir_listing(dir);
	assert_null(strstr(listing, ".tmp"));

	free(listing);
	free(path);
	sup_rmtree(dir);
	free(dir);
}

static void test_enqueue_refuses_what_parse_would_refuse(void **state)
{
	char *dir = sup_tmpdir(), id[96], *listing, big[5000];
	char *bad_key[] = { "to-x=1", NULL }, *no_eq[] = { "novalue", NULL };
	char *newline[] = { "k=a\nb=c", NULL }, *reserved[] = { "@priority=5", NULL };
	char *long_value[] = { big, NULL };

	(void)state;
	snprintf(big, sizeof big, "k=");
	memset(big + 2, 'v', 4096);
	big[4098] = '\0';
	char **cases[] = { bad_key, no_eq, newline, reserved, long_value };
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		errno = 0;
		assert_int_equal(spool_enqueue(dir, 0, 0, 0, cases[i], "", 0, id, sizeof id), -1);
		assert_int_equal(errno, EINVAL);
	}
	assert_int_equal(spool_enqueue(dir, -1, 0, 0, NULL, "", 0, id, sizeof id), -1);
	assert_int_equal(spool_enqueue(dir, INFINITY, 0, 0, NULL, "", 0, id, sizeof id), -1);
	assert_int_equal(spool_enqueue(dir, 0, 2000000, 0, NULL, "", 0, id, sizeof id), -1);
	listing = dir_listing(dir);
	assert_string_equal(listing, "");
	/* A directory that does not exist. */
	char *missing = sup_path(dir, "missing");
	assert_int_equal(spool_enqueue(missing, 0, 0, 0, NULL, "", 0, id, sizeof id), -1);
	assert_int_equal(errno, ENOENT);
	free(missing);
	free(listing);
	sup_rmtree(dir);
	free(dir);
}

static void test_rewrite_keeps_keys_and_body(void **state)
{
	char *dir = sup_tmpdir(), id[96], file[128], *path, *text, *text2, *listing, why[200];
	char *keys[] = { "to=bob", "lowerCase=x", "N=42", NULL };
	const char body[] = "payload\n\0binary\n";
	struct spool_task t, t2;
	size_t len, len2;
	int dirfd;

	(void)state;
	assert_int_equal(spool_enqueue(dir, 0, -3, 0, keys, body, sizeof body - 1, id, sizeof id), 0);
	snprintf(file, sizeof file, "%s.task", id);
	path = sup_path(dir, file);
	text = read_all(path, &len);
	assert_int_equal(spool_parse(text, len, &t, why, sizeof why), 0);
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dirfd >= 0);

	assert_int_equal(spool_rewrite(dirfd, file, &t, 1900000000.125, 4), 0);
	text2 = read_all(path, &len2);
	assert_int_equal(spool_parse(text2, len2, &t2, why, sizeof why), 0);
	assert_true(fabs(t2.at - 1900000000.125) < 1e-3);
	assert_int_equal(t2.attempts, 4);
	assert_int_equal(t2.priority, -3);
	assert_int_equal(strv_len(t2.keys), 3);
	for (size_t i = 0; i < 3; i++) /* as written: "lowerCase", not "LOWERCASE" */
		assert_string_equal(t2.keys[i], keys[i]);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(t2.env[i], t.env[i]);
	assert_int_equal(t2.body_len, sizeof body - 1);
	assert_memory_equal(t2.body, body, t2.body_len);
	listing = dir_listing(dir);
	assert_string_equal(listing, file);
	free(listing);

	/* A rewrite that cannot rename (the name is now a directory) fails and leaves
	 * no temp file behind. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkdir(path, 0750), 0);
	assert_int_equal(spool_rewrite(dirfd, file, &t, 0, 1), -1);
	listing = dir_listing(dir);
	assert_string_equal(listing, file);
	free(listing);

	close(dirfd);
	spool_task_fini(&t);
	spool_task_fini(&t2);
	free(text);
	free(text2);
	free(path);
	sup_rmtree(dir);
	free(dir);
}

/* ---- vassal spool ------------------------------------------------------------------- */

/* The one task file in dir, parsed; its text in *text (free it). */
static void only_task(const char *dir, struct spool_task *t, char **text)
{
	char *listing = dir_listing(dir), *path, why[200];
	size_t len;

	assert_non_null(strstr(listing, ".task"));
	assert_null(strchr(listing, ','));
	path = sup_path(dir, listing);
	*text = read_all(path, &len);
	assert_int_equal(spool_parse(*text, len, t, why, sizeof why), 0);
	free(path);
	free(listing);
}

static void test_cli(void **state)
{
	char *dir = sup_tmpdir(), *body_path = sup_path(dir, "body.txt"), *text, *listing;
	char *spool = sup_path(dir, "spool");
	struct spool_task t;
	double before;

	(void)state;
	assert_int_equal(mkdir(spool, 0750), 0);
	assert_int_equal(sup_write_file(body_path, "the body\n"), 0);
	before = wall_now();
	char *body_opt = NULL;
	assert_true(asprintf(&body_opt, "--body=%s", body_path) > 0);
	/* options anywhere, as --opt VALUE or --opt=VALUE (getopt_long) */
	char *ok[] = { "--at", "+1.5s", spool, "--priority=3", body_opt, "what=report", "n=7", NULL };
	assert_int_equal(spool_cli(7, ok), 0);
	free(body_opt);
	only_task(spool, &t, &text);
	assert_true(t.at >= before + 1.5 - 0.001 && t.at < wall_now() + 1.5 + 0.01); /* %.3f */
	assert_int_equal(t.priority, 3);
	assert_string_equal(env_get(t.env, "SPOOL_WHAT"), "report");
	assert_string_equal(env_get(t.env, "SPOOL_N"), "7");
	assert_int_equal(t.body_len, 9);
	assert_memory_equal(t.body, "the body\n", 9);
	spool_task_fini(&t);
	free(text);

	/* Usage errors exit 2 and write nothing. */
	char *bad_prio[] = { spool, "--priority", "high", NULL };
	char *bad_at[] = { spool, "--at", "tomorrow", NULL };
	char *bad_key[] = { spool, "a-b=1", NULL };
	char *no_dir[] = { NULL };
	assert_int_equal(spool_cli(3, bad_prio), 2);
	assert_int_equal(spool_cli(3, bad_at), 2);
	assert_int_equal(spool_cli(2, bad_key), 2);
	assert_int_equal(spool_cli(0, no_dir), 2);
	listing = dir_listing(spool);
	assert_null(strchr(listing, ','));
	assert_null(strstr(listing, ".tmp"));
	free(listing);

	free(body_path);
	free(spool);
	sup_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_full_header_and_body),
		cmocka_unit_test(test_parse_defaults_and_no_body),
		cmocka_unit_test(test_parse_bad_headers),
		cmocka_unit_test(test_enqueue_parse_round_trip),
		cmocka_unit_test(test_enqueue_refuses_what_parse_would_refuse),
		cmocka_unit_test(test_rewrite_keeps_keys_and_body),
		cmocka_unit_test(test_cli),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
