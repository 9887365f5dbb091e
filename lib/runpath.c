/* runpath.c — the default control socket path (see runpath.h). */
#include "runpath.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void runpath_control(const char *abs_dir, char *out, size_t len)
{
	const char *base = getenv("XDG_RUNTIME_DIR");
	char name[200];
	size_t k = 0;

	if (getuid() == 0 || !base || !*base)
		base = "/run";
	for (const char *p = abs_dir; *p && k < sizeof name - 1; p++)
		if (p != abs_dir || *p != '/')
			name[k++] = *p == '/' ? '_' : *p;
	name[k] = '\0';
	snprintf(out, len, "%s/emperor/%s.sock", base, name);
}
