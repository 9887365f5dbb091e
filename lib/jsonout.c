/* jsonout.c — writing JSON with json-c, valid UTF-8 guaranteed (see jsonout.h). */
#include "jsonout.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if it is not one
 * (overlong forms, surrogates and code points past U+10FFFF are not). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned min, cp;

	if (s[0] > 0 && s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, min = 0x80, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, min = 0x800, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, min = 0x10000, cp = s[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

char *utf8_sanitize(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	char *out = malloc(len * 3 + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len;) {
		size_t k = utf8_seq(p + i, len - i);
		if (k == 0) {
			memcpy(o, "\xef\xbf\xbd", 3); /* U+FFFD, for one bad byte */
			o += 3;
			i++;
			continue;
		}
		memcpy(o, p + i, k);
		o += k;
		i += k;
	}
	*o = '\0';
	return out;
}

static bool utf8_valid(const char *s, size_t len)
{
	for (size_t i = 0, k; i < len; i += k)
		if ((k = utf8_seq((const unsigned char *)s + i, len - i)) == 0)
			return false;
	return true;
}

struct json_object *jsonout_string(const char *s)
{
	size_t len;
	char *fixed;
	struct json_object *o;

	if (!s)
		return NULL;
	len = strlen(s);
	if (utf8_valid(s, len))
		return json_object_new_string_len(s, (int)len);
	fixed = utf8_sanitize(s, len);
	o = fixed ? json_object_new_string(fixed) : json_object_new_string("");
	free(fixed);
	return o;
}

struct json_object *jsonout_fixed(double d, int decimals)
{
	char text[64];

	snprintf(text, sizeof text, "%.*f", decimals < 0 ? 0 : decimals > 6 ? 6 : decimals, d);
	return json_object_new_double_s(d, text);
}

void jsonout_append(struct strbuf *b, struct json_object *o)
{
	size_t len = 0;
	const char *text = json_object_to_json_string_length(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

	if (text)
		strbuf_append(b, text, len);
	strbuf_append(b, "\n", 1);
	json_object_put(o);
}
