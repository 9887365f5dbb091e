/* version.h — the project's version, shown by --version. */
#ifndef EMPEROR_VERSION_H
#define EMPEROR_VERSION_H
#define EMPEROR_VERSION "0.1.0"
#endif
