/* test_page.c — the --metrics listener as a person and a Prometheus server see it:
 * Debian's chromium (headless, a fresh profile in the test's directory) loads the
 * status page of a real emperor, sees every vassal and the config error of a broken
 * file as file:line:col, and sees a vassal stopped by emperorctl change state without
 * a reload of the page (its DOM dumped once the page's virtual time has run out;
 * virtual time stands still while the page's request is held by the emperor, so the
 * change arrives while the page runs); the page takes nothing from elsewhere and
 * the listener takes no write; and the /metrics text of a real emperor with a few
 * vassals passes `promtool check metrics` (Debian's prometheus). */
#include "emperor_fixture.h"

#include <stdbool.h>

#define CHROMIUM "/usr/bin/chromium"
#define PROMTOOL "/usr/bin/promtool"
#define BROWSER_MS 60000   /* chromium's start, the page's life, its exit */

static char ctl_sock[PATH_MAX];

/* The emperor with --metrics on a free loopback port (given as ":PORT" if bare): the
 * port. */
static int page_emperor_start_as(struct fixture *f, bool bare)
{
	static char addr[64];
	int port = free_port();
	const char *extra[] = { "--metrics", addr, NULL };

	snprintf(addr, sizeof addr, bare ? ":%d" : "127.0.0.1:%d", port);
	snprintf(ctl_sock, sizeof ctl_sock, "%s/control.sock", f->dir); /* emperor_start's */
	emperor_start(f, extra);
	return port;
}

static int page_emperor_start(struct fixture *f)
{
	return page_emperor_start_as(f, false);
}

/* One TCP socket listens on port, on 127.0.0.1. */
static void assert_listens_on_loopback_only(int port)
{
	struct sup_listener l[4];
	int n = sup_tcp_listeners(port, l, 4);

	for (int i = 0; i < n && i < 4; i++)
		if (strncmp(l[i].local, "0100007F:", 9) != 0)
			fail_msg("--metrics :%d listens on %s, not loopback", port, l[i].local);
	assert_int_equal(n, 1);
}

static void put_workers(struct fixture *f, const char *file, int port, int count, const char *keys)
{
	char text[2048];

	snprintf(text, sizeof text,
		 "sockets: [{name: http, listen: \"127.0.0.1:%d\"}]\n"
		 "workers: {count: %d, exec: [%s, --greeting, hi], ready: notify, reload-mercy: 2s}\n"
		 "stop-mercy: 3s\n%s", port, count, f->worker, keys ? keys : "");
	put_file(f->vdir, file, text);
}

/* `emperorctl --control ctl.sock ARGS` must exit 0: its output, malloc'd. */
static char *ctl(struct fixture *f, const char *a1, const char *a2, const char *a3)
{
	char *out = sup_path(f->dir, "ctl.out"), *text = NULL;
	int rc = sup_emperorctl(ctl_sock, (const char *const[]){ a1, a2, a3, NULL }, out, T_MS, &text);

	if (rc != 0)
		fail_msg("emperorctl %s: exit %d: %s", a1, rc, text ? text : "");
	free(out);
	return text;
}

/* Waits until the emperor holds n status pages' requests (`status --json` says so). */
static void wait_watchers(struct fixture *f, int n, int timeout_ms)
{
	long long deadline = sup_now_ms() + timeout_ms;
	char needle[64];

	snprintf(needle, sizeof needle, "\"page_watchers\":%d", n);
	for (;;) {
		char *json = ctl(f, "status", "--json", NULL), *at = strstr(json, needle);
		bool watching = at && (at[strlen(needle)] == ',' || at[strlen(needle)] == '}');
		free(json);
		if (watching)
			return;
		if (sup_now_ms() >= deadline)
			fail_msg("not %d status pages waiting for a change within %d ms", n, timeout_ms);
		sup_poll_pause();
	}
}

static void assert_in(const char *what, const char *text, const char *needle)
{
	if (!strstr(text, needle)) {
		fprintf(stderr, "%s\n", text);
		fail_msg("no \"%s\" in %s", needle, what);
	}
}

/* file:LINE:COL: in text (file: the needle, with its colon). */
static void assert_file_line_col(const char *text, const char *file)
{
	const char *at = strstr(text, file);
	int line = 0, col = 0, n = 0;

	if (!at || sscanf(at + strlen(file), "%d:%d:%n", &line, &col, &n) != 2 || n == 0 ||
	    line < 1 || col < 1)
		fail_msg("no %sLINE:COL: in the DOM (%.80s)", file, at ? at : "");
}

/* GET path: 200 with content type `type`; the body, malloc'd. */
static char *get_ok(int port, const char *path, const char *type)
{
	struct sup_http r;
	char *body;

	assert_int_equal(sup_http_get("127.0.0.1", port, path, &r, T_MS), 0);
	if (r.status != 200 || !sup_http_header(&r, "Content-Type") ||
	    strncmp(sup_http_header(&r, "Content-Type"), type, strlen(type)) != 0)
		fail_msg("GET %s: %d %s", path, r.status, sup_http_header(&r, "Content-Type"));
	body = strdup(r.body ? r.body : "");
	sup_http_fini(&r);
	return body;
}

/* The page, over plain HTTP: self-contained, and the listener refuses writes. */
static void check_page_http(int port)
{
	static const char *const external[] = { "src=\"http", "href=\"http", "src=\"//", "href=\"//",
						"@import", "url(http" };
	char *html = get_ok(port, "/", "text/html"), *json;
	struct sup_http r;
	struct sup_conn *c;
	const char post[] = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi";

	for (size_t i = 0; i < ARRAY_SIZE(external); i++)
		if (strstr(html, external[i]))
			fail_msg("the page loads something from elsewhere: %s", external[i]);
	free(html);
	json = get_ok(port, "/status.json", "application/json");
	assert_in("/status.json", json, "\"vassals\":[");
	free(json);
	assert_int_equal(sup_http_get("127.0.0.1", port, "/nothing-here", &r, T_MS), 0);
	assert_int_equal(r.status, 404);
	sup_http_fini(&r);
	c = sup_conn_open("127.0.0.1", port, T_MS);
	assert_non_null(c);
	assert_int_equal(sup_conn_send(c, post, strlen(post), T_MS), 0);
	assert_int_equal(sup_conn_read_response(c, &r, T_MS), 0);
	assert_int_equal(r.status, 405);
	sup_http_fini(&r);
	sup_conn_close(c);
}

/* Chromium, headless, on url: its DOM once the page's virtual time (ms) has run out
 * goes to out (with chromium's own messages). */
static struct sup_proc *chromium_start(struct fixture *f, const char *url, int virtual_ms, const char *out)
{
	char *profile = sup_path(f->dir, "chromium-profile"), budget[64], profile_opt[PATH_MAX + 32];
	char home[PATH_MAX + 8], tmp[PATH_MAX + 8];
	char *argv[] = { CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
			 "--no-first-run", "--disable-background-networking", "--disable-component-update",
			 "--disable-sync", profile_opt, budget, "--dump-dom", (char *)url, NULL };
	char *env[] = { home, tmp, NULL };
	struct sup_spawn_opts o = { .logpath = out, .flags = SUP_SPAWN_NEW_PGROUP };
	struct sup_proc *p;

	assert_int_equal(mkdir(profile, 0700), 0);
	snprintf(profile_opt, sizeof profile_opt, "--user-data-dir=%s", profile);
	snprintf(budget, sizeof budget, "--virtual-time-budget=%d", virtual_ms);
	snprintf(home, sizeof home, "HOME=%s", f->dir); /* nothing lands in ours, nor in /tmp */
	snprintf(tmp, sizeof tmp, "TMPDIR=%s", f->dir);
	p = sup_spawn_ex(argv, env, &o);
	assert_non_null(p);
	free(profile);
	return p;
}

static void chromium_wait(struct sup_proc *p, const char *out)
{
	if (sup_wait_exit(p, BROWSER_MS) < 0) {
		sup_kill_group(p, SIGKILL);
		sup_print_tail(out, 30);
		fail_msg("chromium did not exit within %d ms", BROWSER_MS);
	}
	sup_kill_group(p, SIGKILL); /* its helpers, if any outlived it */
	if (!WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0) {
		sup_print_tail(out, 30);
		fail_msg("chromium %s", sup_status_str(p->status));
	}
}

static void test_page_in_browser(void **state)
{
	struct fixture *f = *state;
	int pa = free_port(), pb = free_port(), mport;
	char url[96], *out = sup_path(f->dir, "chromium.out"), *dom;
	struct sup_proc *browser;

	if (access(CHROMIUM, X_OK) < 0)
		fail_msg(CHROMIUM ": not installed (make deps installs Debian's chromium)");
	mport = page_emperor_start(f);
	put_workers(f, "a.yaml", pa, 2, NULL);
	put_workers(f, "b.yaml", pb, 1, NULL);
	put_file(f->vdir, "broken.yaml", "workers:\n  count: [1\n");
	wait_line(f, 0, " a: ready after ");
	wait_line(f, 0, " b: ready after ");
	wait_line(f, 0, " broken: not started");
	check_page_http(mport);

	snprintf(url, sizeof url, "http://127.0.0.1:%d/", mport);
	browser = chromium_start(f, url, 1500, out);
	wait_watchers(f, 1, BROWSER_MS);
	free(ctl(f, "stop", "b", NULL)); /* the change, while the page waits for one */
	chromium_wait(browser, out);
	sup_proc_free(browser);

	dom = sup_read_file(out);
	assert_non_null(dom);
	assert_in("the DOM", dom, "<tr data-vassal=\"a\" data-state=\"ready\">");
	assert_in("the DOM", dom, "<tr data-vassal=\"broken\" data-state=\"halted\">");
	assert_file_line_col(dom, "broken.yaml:");           /* the error, file:line:col */
	/* seen changing, live: stopping or already halted, as the page's answer came */
	assert_in("the DOM", dom, "<li data-change=\"b\">");
	assert_in("the DOM", dom, "b: ready → ");
	if (!strstr(dom, "<tr data-vassal=\"b\" data-state=\"halted\">") &&
	    !strstr(dom, "<tr data-vassal=\"b\" data-state=\"stopping\">"))
		fail_msg("b's row does not show it stopped");
	assert_in("the DOM", dom, ">2/2<");                   /* a's workers */
	free(dom);
	free(out);
	emperor_stop(f); /* no process left: chromium's included */
}

/* /metrics of a real emperor (vassals with mules, a spooler, none; a broken file)
 * passes promtool's checks. */
static void test_metrics_promtool(void **state)
{
	struct fixture *f = *state;
	int mport, pa = free_port(), pb = free_port();
	char keys[1024], *mule = sup_bin("examples/mule"), *body, *file = sup_path(f->dir, "metrics.txt");
	char *log = sup_path(f->dir, "promtool.out"), cmd[PATH_MAX * 2 + 64];
	char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	struct sup_proc *p;

	if (access(PROMTOOL, X_OK) < 0)
		fail_msg(PROMTOOL ": not installed (make deps installs Debian's prometheus)");
	mport = page_emperor_start_as(f, true); /* ":PORT": loopback */
	assert_listens_on_loopback_only(mport);
	snprintf(keys, sizeof keys, "mules: [{name: m, exec: [%s], count: 1}]\n"
		 "spooler: {dir: %s/spool, exec: [\"true\"]}\n", mule, f->dir);
	put_workers(f, "a.yaml", pa, 2, keys);
	put_workers(f, "b.yaml", pb, 1, NULL);
	put_file(f->vdir, "broken.yaml", "workers: {count: x}\n");
	wait_line(f, 0, " a: ready after ");
	wait_line(f, 0, " b: ready after ");
	wait_line(f, 0, " broken: not started");
	free(ctl(f, "reload", "b", NULL));

	body = get_ok(mport, "/metrics", "text/plain; version=0.0.4");
	assert_int_equal(sup_write_file(file, body), 0);
	snprintf(cmd, sizeof cmd, PROMTOOL " check metrics < '%s'", file);
	p = sup_spawn(argv, NULL, NULL, log);
	assert_non_null(p);
	assert_int_equal(sup_wait_exit(p, T_MS), 0);
	if (!WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0) {
		fprintf(stderr, "%s", body);
		sup_print_tail(log, 40);
		fail_msg("promtool check metrics: %s", sup_status_str(p->status));
	}
	sup_proc_free(p);
	free(body), free(file), free(log), free(mule);
	emperor_stop(f);
}

/* Pages held waiting for a change leave the HTTP client slots (16) to scrapes, are
 * answered at once when something changes, and one closed meanwhile goes. */
static void test_held_pages(void **state)
{
	struct fixture *f = *state;
	int mport = page_emperor_start(f), pa = free_port();
	char *json, *at, version[32], request[128];
	struct sup_conn *held[20];
	struct sup_http r;

	put_workers(f, "a.yaml", pa, 1, NULL);
	wait_line(f, 0, " a: ready after ");
	json = get_ok(mport, "/status.json", "application/json");
	at = strstr(json, "\"version\":\"");
	assert_non_null(at);
	snprintf(version, sizeof version, "%.*s", (int)strcspn(at + 11, "\""), at + 11);
	free(json);
	snprintf(request, sizeof request, "GET /status.json?after=%s HTTP/1.1\r\nHost: x\r\n\r\n", version);
	for (int i = 0; i < 20; i++) {
		held[i] = sup_conn_open("127.0.0.1", mport, T_MS);
		assert_non_null(held[i]);
		assert_int_equal(sup_conn_send(held[i], request, strlen(request), T_MS), 0);
		wait_watchers(f, i + 1, T_MS);
	}
	sup_conn_close(held[19]); /* gone while held */
	wait_watchers(f, 19, T_MS);
	for (int i = 0; i < 19; i++) /* held: nothing yet */
		assert_int_equal(sup_conn_readable(held[i], i == 0 ? 300 : 0), 0);
	free(get_ok(mport, "/metrics", "text/plain")); /* a scrape still gets through */
	free(ctl(f, "stop", "a", NULL));
	for (int i = 0; i < 19; i++) {
		assert_int_equal(sup_conn_read_response(held[i], &r, T_MS), 0);
		assert_int_equal(r.status, 200);
		assert_non_null(strstr(r.body, "\"name\":\"a\",\"state\":\"")); /* stopping or halted */
		assert_null(strstr(r.body, "\"name\":\"a\",\"state\":\"ready\""));
		sup_http_fini(&r);
		sup_conn_close(held[i]);
	}
	emperor_stop(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_page_in_browser),
		TEST(test_metrics_promtool),
		TEST(test_held_pages),
	};

	sup_init();
	if (getenv("EMPEROR_TEST_FILTER"))
		cmocka_set_test_filter(getenv("EMPEROR_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
