/* reload_config.h — a reload's check of the vassal file (vassal/reload_config.c). */
#ifndef EMPEROR_RELOAD_CONFIG_H
#define EMPEROR_RELOAD_CONFIG_H

#include <stddef.h>

#include "config.h"
#include "master.h"

/* Reads and validates path; every error is logged. The config, and the exact text it
 * was parsed from in *text (malloc'd, *len bytes, for the next image); NULL if invalid. */
struct config *reload_config_load(const char *path, char **text, size_t *len);
/* What in next only a new master image can apply ("sockets", "limits", ...), or NULL. */
const char *reload_config_master_change(const struct master *m, const struct config *next);

#endif
