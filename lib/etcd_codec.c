/* etcd_codec.c — the etcd client's pure parts, kept apart so that unit tests walk them
 * without a network: base64 (keys and values travel base64 in etcd's JSON), the end
 * of a prefix range, the reconnect backoff, the connection state table, and the
 * splitter that cuts a watch stream into JSON objects however they are chunked. */
#include "etcd.h"
#include "etcd_internal.h"

#include <stdlib.h>
#include <string.h>

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *etcd_b64_encode(const void *data, size_t len)
{
	const unsigned char *in = data;
	char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		*o++ = b64_alphabet[v >> 18 & 63];
		*o++ = b64_alphabet[v >> 12 & 63];
		*o++ = i + 1 < len ? b64_alphabet[v >> 6 & 63] : '=';
		*o++ = i + 2 < len ? b64_alphabet[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

static int b64_value(char ch)
{
	const char *p = ch ? strchr(b64_alphabet, ch) : NULL;

	return p ? (int)(p - b64_alphabet) : -1;
}

char *etcd_b64_decode(const char *text, size_t len, size_t *out_len)
{
	unsigned char *out;
	size_t n = 0, pad = 0;

	if (len % 4)
		return NULL;
	while (pad < 2 && pad < len && text[len - 1 - pad] == '=')
		pad++;
	out = malloc(len / 4 * 3 + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i += 4) {
		unsigned v = 0;
		for (size_t k = 0; k < 4; k++) {
			int d = i + k >= len - pad ? 0 : b64_value(text[i + k]);
			if (d < 0) {
				free(out);
				return NULL;
			}
			v = v << 6 | (unsigned)d;
		}
		out[n++] = (unsigned char)(v >> 16);
		out[n++] = (unsigned char)(v >> 8);
		out[n++] = (unsigned char)v;
	}
	n -= pad;
	out[n] = '\0';
	*out_len = n;
	return (char *)out;
}

char *etcd_prefix_end(const char *key, size_t len, size_t *out_len)
{
	char *end = malloc(len + 1);

	if (!end)
		return NULL;
	memcpy(end, key, len);
	while (len > 0) {
		if ((unsigned char)end[len - 1] != 0xff) {
			end[len - 1] = (char)((unsigned char)end[len - 1] + 1);
			*out_len = len;
			return end;
		}
		len--;
	}
	end[0] = '\0'; /* no key above every key with this prefix: the whole key space */
	*out_len = 1;
	return end;
}

double etcd_backoff(int attempt, double min, double max, double unit)
{
	double d = min;

	for (int i = 0; i < attempt && d < max; i++)
		d *= 2;
	if (d > max)
		d = max;
	return d * (0.5 + unit / 2);
}

/* ---- the connection's state machine ---------------------------------------------------- */

#define L_CONN ETCD_ACT_LOG_CONNECTED
#define L_RECONN ETCD_ACT_LOG_RECONNECTED
#define L_LOST ETCD_ACT_LOG_LOST
#define L_DOWN ETCD_ACT_LOG_DOWN
#define A_NEXT ETCD_ACT_NEXT
#define A_BACKOFF ETCD_ACT_BACKOFF
#define A_FLUSH ETCD_ACT_FLUSH
#define A_RESET ETCD_ACT_RESET

static const struct conn_row {
	enum etcd_conn_state next;
	int actions;
} conn_table[ETCD_CONN_NSTATES][ETCD_EV_NEVENTS] = {
	[ETCD_CONN_INIT] = {
		[ETCD_EV_OK] = { ETCD_CONN_UP, L_CONN | A_RESET },
		[ETCD_EV_FAIL] = { ETCD_CONN_INIT, A_NEXT },
		[ETCD_EV_FAIL_LAST] = { ETCD_CONN_DOWN, L_DOWN | A_NEXT | A_BACKOFF },
		[ETCD_EV_TIMER] = { ETCD_CONN_INIT, 0 },
	},
	[ETCD_CONN_UP] = {
		[ETCD_EV_OK] = { ETCD_CONN_UP, 0 },
		[ETCD_EV_FAIL] = { ETCD_CONN_FAILOVER, L_LOST | A_NEXT },
		[ETCD_EV_FAIL_LAST] = { ETCD_CONN_DOWN, L_LOST | L_DOWN | A_NEXT | A_BACKOFF },
		[ETCD_EV_TIMER] = { ETCD_CONN_UP, 0 },
	},
	[ETCD_CONN_FAILOVER] = {
		[ETCD_EV_OK] = { ETCD_CONN_UP, L_RECONN | A_RESET },
		[ETCD_EV_FAIL] = { ETCD_CONN_FAILOVER, A_NEXT },
		[ETCD_EV_FAIL_LAST] = { ETCD_CONN_DOWN, L_DOWN | A_NEXT | A_BACKOFF },
		[ETCD_EV_TIMER] = { ETCD_CONN_FAILOVER, 0 },
	},
	[ETCD_CONN_DOWN] = { /* answers to requests sent before the round failed: stale */
		[ETCD_EV_OK] = { ETCD_CONN_DOWN, 0 },
		[ETCD_EV_FAIL] = { ETCD_CONN_DOWN, 0 },
		[ETCD_EV_FAIL_LAST] = { ETCD_CONN_DOWN, 0 },
		[ETCD_EV_TIMER] = { ETCD_CONN_RETRY, A_FLUSH },
	},
	[ETCD_CONN_RETRY] = { /* silent: "down" was said once, "reconnected" comes next */
		[ETCD_EV_OK] = { ETCD_CONN_UP, L_RECONN | A_RESET },
		[ETCD_EV_FAIL] = { ETCD_CONN_RETRY, A_NEXT },
		[ETCD_EV_FAIL_LAST] = { ETCD_CONN_DOWN, A_NEXT | A_BACKOFF },
		[ETCD_EV_TIMER] = { ETCD_CONN_RETRY, 0 },
	},
};

enum etcd_conn_state etcd_conn_step(enum etcd_conn_state s, enum etcd_conn_event ev,
				    int *actions)
{
	const struct conn_row *row = &conn_table[s][ev];

	*actions = row->actions;
	return row->next;
}

const char *etcd_conn_state_name(enum etcd_conn_state s)
{
	static const char *const names[ETCD_CONN_NSTATES] = {
		[ETCD_CONN_INIT] = "init", [ETCD_CONN_UP] = "up", [ETCD_CONN_FAILOVER] = "failover",
		[ETCD_CONN_DOWN] = "down", [ETCD_CONN_RETRY] = "retry",
	};
	return (unsigned)s < ETCD_CONN_NSTATES ? names[s] : "?";
}

/* ---- the JSON stream splitter ---------------------------------------------------------- */

int etcd_jstream_init(struct etcd_jstream *s)
{
	s->tok = json_tokener_new();
	return s->tok ? 0 : -1;
}

void etcd_jstream_fini(struct etcd_jstream *s)
{
	if (s->tok)
		json_tokener_free(s->tok);
	s->tok = NULL;
}

/* json-c's tokener keeps a partial object across calls and tells where a complete one
 * ended, so objects split over chunks or packed into one come out one by one. */
int etcd_jstream_feed(struct etcd_jstream *s, const char *data, size_t len,
		      void (*emit)(void *arg, json_object *o), void *arg)
{
	while (len > 0) {
		json_object *o = json_tokener_parse_ex(s->tok, data, (int)len);
		enum json_tokener_error err = json_tokener_get_error(s->tok);
		size_t used;

		if (!o && err == json_tokener_continue)
			return 0; /* all of data is held by the tokener */
		if (!o && err != json_tokener_success) {
			json_tokener_reset(s->tok);
			return -1;
		}
		used = json_tokener_get_parse_end(s->tok);
		if (used == 0 || used > len)
			used = len;
		if (o)
			emit(arg, o);
		data += used;
		len -= used;
	}
	return 0;
}
