/* emperorctl.c — the command line for a running emperor. It sends one request line
 * to the emperor's control socket (emperor/control.c) and prints the answer; the
 * emperor does the formatting, so this stays a thin client. `top` repeats `status`
 * every second on a cleared screen. Options are parsed by getopt_long, anywhere on
 * the line (`--dir=/x status`, `status --json`); the command and its arguments are
 * checked here, so that a usage error never reaches the emperor.
 * Exit status: 0 done; 1 refused or failed (the emperor answered with an error, or
 * gave no answer in time); 2 usage; 3 unreachable (no emperor at the socket). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "runpath.h"
#include "version.h"

enum { EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_UNREACHABLE = 3 };

struct opts {
	const char *control, *dir;
	double timeout;
	bool json, all, follow;
	int iterations; /* top: 0 = until interrupted */
	long lines;     /* logs -n: 0 = every line kept */
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: emperorctl [OPTIONS] COMMAND [ARGS]\n"
		"\n"
		"  status [NAME]         every vassal; or one vassal and each of its children\n"
		"  reload NAME|--all     graceful reload; answers once reloaded\n"
		"  chain-reload NAME     one worker at a time; answers once done\n"
		"  stop NAME|--all       stop it (the file stays); answers once stopped\n"
		"  start NAME            start a stopped vassal; answers once ready\n"
		"  reopen-logs           every vassal with log: reopens its file\n"
		"  logs NAME [-n N] [-f] the vassal's last lines (the emperor keeps 64 KiB);\n"
		"                        -f: then every new line, until interrupted\n"
		"  metrics               Prometheus text format\n"
		"  top                   status, refreshed every second (Ctrl-C to leave)\n"
		"  cluster               every node's vassals, from etcd (emperor --etcd)\n"
		"\n"
		"  --json                status or cluster as JSON\n"
		"  --control PATH        the control socket (default: from --dir, or $EMPEROR_CONTROL)\n"
		"  --dir DIR             the emperor's watched directory (default vassals.d)\n"
		"  --timeout SECONDS     how long to wait for an answer (default 130)\n"
		"  --iterations N        top: stop after N refreshes\n"
		"  -n, --lines N         logs: the last N lines only\n"
		"  -f, --follow          logs: keep printing lines as they come\n"
		"  -h, --help            this text;  --version  the version\n"
		"\n"
		"Options go anywhere, as --opt VALUE or --opt=VALUE.\n"
		"Exit status: 0 done; 1 refused or failed (an error answer, or none within\n"
		"--timeout); 2 usage; 3 unreachable (no emperor at the control socket).\n");
}

static int connect_control(const char *path, double timeout)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = (time_t)timeout,
			      .tv_usec = (suseconds_t)((timeout - (double)(time_t)timeout) * 1e6) };
	int fd;

	if (strlen(path) >= sizeof sun.sun_path) {
		fprintf(stderr, "emperorctl: %s: path too long\n", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
		fprintf(stderr, "emperorctl: cannot reach the emperor at %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Sends request; the whole answer (malloc'd) in *out. 0, or an exit status. */
static int ask(const struct opts *o, const char *path, const char *request, char **out)
{
	size_t len = 0, cap = 65536;
	char *buf = malloc(cap);
	int fd = connect_control(path, o->timeout);
	ssize_t n;

	if (fd < 0 || !buf) {
		free(buf);
		return EXIT_UNREACHABLE;
	}
	int sent = (send(fd, request, strlen(request), MSG_NOSIGNAL) < 0 ||
		    send(fd, "\n", 1, MSG_NOSIGNAL) < 0) ? errno : 0;
	/* Closed under our feet: the emperor may have said why (a refusal) first. */
	if (sent && sent != EPIPE && sent != ECONNRESET) {
		fprintf(stderr, "emperorctl: send: %s\n", strerror(sent));
		close(fd);
		free(buf);
		return EXIT_UNREACHABLE;
	}
	while ((n = recv(fd, buf + len, cap - len - 1, 0)) > 0) {
		len += (size_t)n;
		if (len + 1 == cap) {
			char *grown = realloc(buf, cap * 2);
			if (!grown)
				break;
			buf = grown;
			cap *= 2;
		}
	}
	close(fd);
	buf[len] = '\0';
	if (sent && len == 0) {
		fprintf(stderr, "emperorctl: send: %s\n", strerror(sent));
		free(buf);
		return EXIT_UNREACHABLE;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		fprintf(stderr, "emperorctl: no answer within %.0fs\n", o->timeout);
		free(buf);
		return EXIT_FAILED;
	}
	*out = buf;
	return 0;
}

/* Prints the body; the status line decides the exit status. */
static int show(const char *answer)
{
	const char *body = strchr(answer, '\n');

	body = body ? body + 1 : "";
	if (strncmp(answer, "OK\n", 3) == 0) {
		fputs(body, stdout);
		return 0;
	}
	if (strncmp(answer, "ERR ", 4) == 0) {
		fprintf(stderr, "emperorctl: %.*s\n", (int)strcspn(answer + 4, "\n"), answer + 4);
		fputs(body, stderr);
		return EXIT_FAILED;
	}
	if (!answer[0])
		fprintf(stderr, "emperorctl: the emperor closed the connection without an answer\n");
	else
		fprintf(stderr, "emperorctl: unexpected answer: %.80s\n", answer);
	return EXIT_FAILED;
}

static bool use_colour(void)
{
	const char *term = getenv("TERM");

	return isatty(1) && !getenv("NO_COLOR") && term && strcmp(term, "dumb") != 0;
}

static void print_top_line(const char *line, bool colour)
{
	static const struct { const char *word, *code; } colours[] = {
		{ " ready ", "32" }, { " reloading ", "33" }, { " starting ", "33" },
		{ " waiting ", "31" }, { " halted ", "31" }, { " stopping ", "35" },
		{ " on-demand ", "36" }, { " idle ", "36" }, /* no process, not an error */
	};
	for (size_t i = 0; colour && i < sizeof colours / sizeof colours[0]; i++)
		if (strstr(line, colours[i].word)) {
			printf("\033[%sm%s\033[0m\n", colours[i].code, line);
			return;
		}
	printf("%s\n", line);
}

static int top(const struct opts *o, const char *path)
{
	bool colour = use_colour();

	for (int i = 0; o->iterations == 0 || i < o->iterations; i++) {
		char *answer = NULL, now[32];
		time_t t = time(NULL);
		int rc = ask(o, path, "status", &answer);
		if (rc)
			return rc;
		strftime(now, sizeof now, "%H:%M:%S", localtime(&t));
		if (isatty(1))
			printf("\033[H\033[2J");
		printf("emperorctl top — %s — %s\n\n", path, now);
		char *save = NULL, *body = strchr(answer, '\n');
		for (char *l = strtok_r(body ? body + 1 : answer, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
			print_top_line(l, colour);
		fflush(stdout);
		free(answer);
		if (o->iterations == 0 || i + 1 < o->iterations)
			sleep(1); /* the refresh period of an interactive view */
	}
	return 0;
}

/* logs -f: the answer's status line, then every byte as it comes, until the emperor
 * closes (it goes away) or we are interrupted. No timeout once answered. */
static int follow(const struct opts *o, const char *path, const char *request)
{
	struct timeval none = { 0 };
	char buf[8192];
	bool head = true;
	ssize_t n;
	int fd = connect_control(path, o->timeout);

	if (fd < 0)
		return EXIT_UNREACHABLE;
	if (send(fd, request, strlen(request), MSG_NOSIGNAL) < 0 || send(fd, "\n", 1, MSG_NOSIGNAL) < 0) {
		fprintf(stderr, "emperorctl: send: %s\n", strerror(errno));
		close(fd);
		return EXIT_UNREACHABLE;
	}
	while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
		size_t skip = 0;
		if (head) { /* "OK\n" (the status line arrives whole: the emperor writes it first) */
			buf[n < (ssize_t)sizeof buf ? n : n - 1] = '\0';
			if (strncmp(buf, "OK\n", 3) != 0) {
				close(fd);
				return show(buf);
			}
			skip = 3;
			head = false;
			setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
		}
		if (fwrite(buf + skip, 1, (size_t)n - skip, stdout) != (size_t)n - skip || fflush(stdout) != 0)
			break; /* our reader went away */
	}
	close(fd);
	if (head) {
		fprintf(stderr, "emperorctl: %s\n", n < 0 ? "no answer in time" :
			"the emperor closed the connection without an answer");
		return EXIT_FAILED;
	}
	return 0;
}

static const struct command {
	const char *name;
	int min_args, max_args;
} commands[] = {
	{ "status", 0, 1 }, { "reload", 1, 1 }, { "chain-reload", 1, 1 }, { "stop", 1, 1 },
	{ "start", 1, 1 }, { "reopen-logs", 0, 0 }, { "metrics", 0, 0 }, { "top", 0, 0 },
	{ "cluster", 0, 0 },
	{ "logs", 1, 1 },
};

/* A number in [min, max] from an option's value, or a usage error. */
static int number_opt(const char *opt, const char *value, double min, double max, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(value, &end);
	if (errno || end == value || *end || !(*out >= min && *out <= max)) {
		fprintf(stderr, "emperorctl: --%s: \"%s\" is not a number from %g to %g\n", opt,
			value, min, max);
		return -1;
	}
	return 0;
}

/* The command and its arguments must be one of `commands` (`reload --all` is
 * `reload` with o->all, and so is `stop --all`). */
static int check_command(const struct opts *o, char **words, int n)
{
	int args = n - 1 + (o->all ? 1 : 0);

	if (n == 0) {
		fprintf(stderr, "emperorctl: no command\n");
		return -1;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(words[0], commands[i].name) != 0)
			continue;
		if (o->all && strcmp(words[0], "reload") != 0 && strcmp(words[0], "stop") != 0) {
			fprintf(stderr, "emperorctl: --all goes with reload and stop only\n");
			return -1;
		}
		if ((o->follow || o->lines) && strcmp(words[0], "logs") != 0) {
			fprintf(stderr, "emperorctl: -f and -n go with logs only\n");
			return -1;
		}
		if (args < commands[i].min_args || args > commands[i].max_args) {
			fprintf(stderr, "emperorctl: %s takes %s\n", words[0],
				commands[i].max_args == 0 ? "no argument" :
				commands[i].min_args == 0 ? "at most a NAME" :
				strcmp(words[0], "reload") == 0 || strcmp(words[0], "stop") == 0 ?
				"a NAME or --all" : "a NAME");
			return -1;
		}
		return 0;
	}
	fprintf(stderr, "emperorctl: unknown command '%s'\n", words[0]);
	return -1;
}

/* Fills o; the command and its arguments in words (*n_words of them). -1 on a usage
 * error (said on stderr). */
static int parse_opts(int argc, char **argv, struct opts *o, char **words, int *n_words)
{
	enum { O_CONTROL = 256, O_DIR, O_TIMEOUT, O_ITERATIONS, O_JSON, O_ALL, O_VERSION };
	/* -f and -n are logs' (as tail's); the rest are long only */
	static const struct option longopts[] = {
		{ "control", required_argument, NULL, O_CONTROL },
		{ "dir", required_argument, NULL, O_DIR },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "iterations", required_argument, NULL, O_ITERATIONS },
		{ "json", no_argument, NULL, O_JSON },
		{ "all", no_argument, NULL, O_ALL },
		{ "follow", no_argument, NULL, 'f' },
		{ "lines", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	double number;
	int ch;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":hfn:", longopts, NULL)) != -1) {
		switch (ch) {
		case O_CONTROL: o->control = optarg; break;
		case O_DIR: o->dir = optarg; break;
		case O_JSON: o->json = true; break;
		case O_ALL: o->all = true; break;
		case 'f': o->follow = true; break;
		case 'n':
			if (number_opt("lines", optarg, 1, 1e9, &number) < 0 || number != (long)number)
				return -1;
			o->lines = (long)number;
			break;
		case O_TIMEOUT:
			if (number_opt("timeout", optarg, 0.001, 86400, &o->timeout) < 0)
				return -1;
			break;
		case O_ITERATIONS:
			if (number_opt("iterations", optarg, 1, 1e9, &number) < 0 || number != (int)number)
				return -1;
			o->iterations = (int)number;
			break;
		case 'h': usage(stdout); exit(0);
		case O_VERSION: printf("emperorctl %s\n", EMPEROR_VERSION); exit(0);
		case ':':
			fprintf(stderr, "emperorctl: %s needs a value\n", argv[optind - 1]);
			return -1;
		default:
			fprintf(stderr, "emperorctl: unknown option '%s'\n", argv[optind - 1]);
			return -1;
		}
	}
	*n_words = 0;
	for (int i = optind; i < argc; i++)
		words[(*n_words)++] = argv[i];
	return check_command(o, words, *n_words);
}

int main(int argc, char **argv)
{
	struct opts o = { .dir = getenv("EMPEROR_DIR"), .control = getenv("EMPEROR_CONTROL"),
			  .timeout = 130 };
	char path[PATH_MAX], abs[PATH_MAX], request[1024];
	char **words = calloc((size_t)argc + 1, sizeof *words);
	int n_words, rc;

	if (!words || parse_opts(argc, argv, &o, words, &n_words) < 0) {
		usage(stderr);
		free(words);
		return EXIT_USAGE;
	}
	if (o.control) {
		snprintf(path, sizeof path, "%s", o.control);
	} else {
		const char *dir = o.dir ? o.dir : "vassals.d";
		if (!realpath(dir, abs)) {
			fprintf(stderr, "emperorctl: %s: %s (use --dir or --control)\n", dir, strerror(errno));
			free(words);
			return EXIT_UNREACHABLE;
		}
		runpath_control(abs, path, sizeof path);
	}
	if (strcmp(words[0], "top") == 0) {
		rc = top(&o, path);
		free(words);
		return rc;
	}
	size_t used = 0;
	for (int i = 0; i < n_words && used < sizeof request - 1; i++)
		used += (size_t)snprintf(request + used, sizeof request - used, "%s%s", i > 0 ? " " : "", words[i]);
	free(words);
	if (o.all && used < sizeof request - 8)
		used += (size_t)snprintf(request + used, sizeof request - used, " --all");
	if (strcmp(request, "logs") == 0 || strncmp(request, "logs ", 5) == 0) {
		snprintf(request + used, sizeof request - used, " %ld%s", o.lines, o.follow ? " follow" : "");
		if (o.follow)
			return follow(&o, path, request);
	}
	if (o.json && used < sizeof request - 8)
		snprintf(request + used, sizeof request - used, " --json");
	char *answer = NULL;
	rc = ask(&o, path, request, &answer);
	if (rc)
		return rc;
	rc = show(answer);
	free(answer);
	return rc;
}
