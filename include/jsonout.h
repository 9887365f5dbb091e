/* jsonout.h — the JSON we write, through json-c: strings that are always valid UTF-8
 * (an invalid sequence becomes U+FFFD, never a raw byte), numbers with a fixed
 * number of decimals, and a document appended to a strbuf. */
#ifndef EMPEROR_JSONOUT_H
#define EMPEROR_JSONOUT_H

#include <json-c/json.h>
#include <stddef.h>

#include "util.h"

/* s as a JSON string, invalid UTF-8 replaced; NULL gives JSON null. */
struct json_object *jsonout_string(const char *s);
/* d printed with `decimals` digits after the point (0 to 6). */
struct json_object *jsonout_fixed(double d, int decimals);
/* Appends o, compact, and a newline to b; then drops o (json_object_put). */
void jsonout_append(struct strbuf *b, struct json_object *o);
/* A malloc'd copy of s (len bytes) where each invalid UTF-8 sequence (and each NUL)
 * is replaced by U+FFFD; NULL when out of memory. */
char *utf8_sanitize(const char *s, size_t len);

#endif
