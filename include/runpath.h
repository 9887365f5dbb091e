/* runpath.h — where an emperor's control socket lives by default, so that the
 * emperor and emperorctl agree: $XDG_RUNTIME_DIR/emperor/ for a user with one,
 * /run/emperor/ for root, named after the watched directory's absolute path with
 * '/' turned into '_' (/srv/vassals.d → /run/emperor/srv_vassals.d.sock). */
#ifndef EMPEROR_RUNPATH_H
#define EMPEROR_RUNPATH_H

#include <stddef.h>

void runpath_control(const char *abs_dir, char *out, size_t len);

#endif
