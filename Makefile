# emperor — one Makefile. Every output goes under $(BUILD) (default build/).
#
#   make          build build/emperor, build/vassal and build/examples/*
#   make deps     install missing Debian packages (apt-get, only when one is absent)
#   make run      deps + build + start the emperor on ./vassals.d
#   make test     deps + build + run every cmocka test (unit, then integration)
#   make asan     the whole test suite under AddressSanitizer + UBSan (build/asan/)
#   make valgrind the unit tests under valgrind's memcheck
#   make clean    remove build/
#
# libev and http-parser ship no pkg-config file on Debian 12: their flags fall back
# to plain -lev / -lhttp_parser (headers are in /usr/include).

BUILD     ?= build
CC        ?= cc
SAN_FLAGS ?=
# libcurl: its headers only; the etcd client loads it with dlopen when first used
# (lib/etcd_curl.c), so that the binaries do not pay its many libraries at every exec.
# Integration tests that speak to etcd themselves link it.
PKGS      := yaml-0.1 json-c
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) libcurl 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lyaml -ljson-c)
CURL_LIBS  := $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl)
EV_LIBS    := $(shell pkg-config --libs libev 2>/dev/null || echo -lev)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null || echo -lcmocka)
HTTP_PARSER_LIBS := $(shell pkg-config --libs http-parser 2>/dev/null || echo -lhttp_parser)

# CFLAGS is the user's (optimisation, debug); the project's own flags are always
# added, even when CFLAGS is given on the command line.
CFLAGS   ?= -O2 -g
PROJECT_CFLAGS := -std=gnu11 -D_GNU_SOURCE= -Wall -Wextra -Werror -Iinclude $(PKG_CFLAGS)
ALL_CFLAGS = $(PROJECT_CFLAGS) $(CFLAGS) $(SAN_FLAGS)
LIBS     := $(PKG_LIBS) $(EV_LIBS) $(HTTP_PARSER_LIBS) -lm

LIB_SRC     := $(wildcard lib/*.c)
EMPEROR_SRC := $(filter-out emperor/main.c,$(wildcard emperor/*.c))
VASSAL_SRC  := $(filter-out vassal/main.c,$(wildcard vassal/*.c))
# hello-worker is linked from several files; the others are one file each
HELLO_SRC   := examples/hello-worker.c examples/hello_conn.c examples/hello_accept.c \
               examples/worker_test_opts.c examples/worker_health.c
EXAMPLES    := $(patsubst examples/%.c,$(BUILD)/examples/%,$(filter-out $(HELLO_SRC),$(wildcard examples/*.c))) \
               $(BUILD)/examples/hello-worker
SUPPORT_SRC := $(wildcard tests/support/*.c)
UNIT_TESTS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(wildcard tests/unit/test_*.c))
INTEG_TESTS := $(patsubst tests/integration/%.c,$(BUILD)/tests/integration/%,$(wildcard tests/integration/test_*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
LIB_A     := $(BUILD)/libcommon.a
EMPEROR_A := $(BUILD)/libemperor.a
VASSAL_A  := $(BUILD)/libvassal.a
SUPPORT_A := $(BUILD)/libsupport.a

.PHONY: all deps run test unit integration asan valgrind clean
all: $(BUILD)/emperor $(BUILD)/vassal $(BUILD)/emperorctl $(EXAMPLES)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(LIB_A): $(call obj,$(LIB_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(EMPEROR_A): $(call obj,$(EMPEROR_SRC)) | $(LIB_A)
	rm -f $@ && ar rcs $@ $^
$(VASSAL_A): $(call obj,$(VASSAL_SRC)) | $(LIB_A)
	rm -f $@ && ar rcs $@ $^
$(SUPPORT_A): $(call obj,$(SUPPORT_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# The emperor binds on-demand vassals' sockets with the master's code (vassal/vsock.c):
# it links that one object from the vassal's archive.
$(BUILD)/emperor: $(call obj,emperor/main.c) $(EMPEROR_A) $(VASSAL_A) $(LIB_A)
	$(CC) $(LDFLAGS) $(SAN_FLAGS) -o $@ $^ $(LIBS)
$(BUILD)/vassal: $(call obj,vassal/main.c) $(VASSAL_A) $(LIB_A)
	$(CC) $(LDFLAGS) $(SAN_FLAGS) -o $@ $^ $(LIBS)
$(BUILD)/emperorctl: $(call obj,$(wildcard ctl/*.c)) $(LIB_A)
	$(CC) $(LDFLAGS) $(SAN_FLAGS) -o $@ $^ $(LIBS)
$(BUILD)/examples/hello-worker: $(call obj,$(HELLO_SRC)) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(SAN_FLAGS) -pthread -o $@ $^ $(LIBS)
$(BUILD)/examples/%: $(call obj,examples/%.c) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(SAN_FLAGS) -o $@ $^ $(LIBS)

# The status page (emperor/page.html) is compiled into the emperor as a byte array by
# xxd -i (Debian's xxd), included by emperor/control_page.c.
$(BUILD)/gen/page_html.inc: emperor/page.html
	@mkdir -p $(dir $@)
	xxd -i < $< > $@.tmp && mv $@.tmp $@
$(BUILD)/obj/emperor/control_page.o: $(BUILD)/gen/page_html.inc
$(BUILD)/obj/emperor/control_page.o: ALL_CFLAGS += -I$(BUILD)/gen

# Unit tests may exercise any module, so they link every library.
$(BUILD)/tests/unit/%: $(call obj,tests/unit/%.c) $(EMPEROR_A) $(VASSAL_A) $(LIB_A) $(SUPPORT_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(SAN_FLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LIBS)
$(BUILD)/tests/integration/%: $(call obj,tests/integration/%.c) $(SUPPORT_A) $(VASSAL_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(SAN_FLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LIBS) $(CURL_LIBS)

# Debian packages the build and the tests need; `deps` installs only what is absent.
DEB_PKGS := gcc libc6-dev make pkg-config libev-dev libyaml-dev libcmocka-dev libhttp-parser-dev \
            libcurl4-openssl-dev libjson-c-dev etcd-server etcd-client openssl xxd \
            chromium prometheus
# The servers of docs/recipes/, which tests/integration/test_recipes.c runs.
DEB_PKGS += python3 gunicorn uwsgi-core uwsgi-plugin-python3 nodejs systemd lighttpd
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	echo "deps: missing Debian packages:$$missing"; \
	if ! command -v apt-get >/dev/null; then echo "deps: no apt-get here; install them by hand" >&2; exit 1; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "deps: not root; run: sudo apt-get install$$missing" >&2; exit 1; fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get install -y -q --no-install-recommends $$missing || \
	  { apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; }

run: deps
	@$(MAKE) --no-print-directory all
	./$(BUILD)/emperor vassals.d

tests: all $(UNIT_TESTS) $(INTEG_TESTS)

test: deps
	@$(MAKE) --no-print-directory tests
	@EMPEROR_BUILD=$(BUILD) tests/run $(UNIT_TESTS) $(INTEG_TESTS)

unit: deps
	@$(MAKE) --no-print-directory all $(UNIT_TESTS)
	@EMPEROR_BUILD=$(BUILD) tests/run $(UNIT_TESTS)

integration: deps
	@$(MAKE) --no-print-directory tests
	@EMPEROR_BUILD=$(BUILD) tests/run $(INTEG_TESTS)

asan: deps
	@$(MAKE) --no-print-directory BUILD=build/asan CFLAGS="-O1 -g" \
	  SAN_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" tests
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  EMPEROR_BUILD=build/asan tests/run $(patsubst $(BUILD)/%,build/asan/%,$(UNIT_TESTS) $(INTEG_TESTS))

valgrind: deps
	@$(MAKE) --no-print-directory all $(UNIT_TESTS)
	@EMPEROR_BUILD=$(BUILD) TEST_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite" \
	  tests/run $(UNIT_TESTS)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---- install, uninstall, man pages (docs/install.md) -------------------------------
#
#   make install [PREFIX=/usr/local] [DESTDIR=]   binaries, man pages, example, unit
#   make uninstall [PREFIX=...] [DESTDIR=...]     removes exactly those files
#   make man                                      build/man/*.8, *.5 from docs/man/*.scd
#
# Files written for PREFIX=/usr/local (the unit's ExecStart=, the example's exec:) are
# installed through sed, so that their paths follow PREFIX.

PREFIX  ?= /usr/local
DESTDIR ?=
INST_BIN     := $(DESTDIR)$(PREFIX)/bin
INST_MAN     := $(DESTDIR)$(PREFIX)/share/man
INST_DOC     := $(DESTDIR)$(PREFIX)/share/doc/emperor
INST_LIBEXEC := $(DESTDIR)$(PREFIX)/libexec/emperor
INST_UNIT    := $(DESTDIR)$(PREFIX)/lib/systemd/system
# Shell completion for emperorctl: where bash-completion looks, and zsh's site-functions
# (Debian's zsh reads vendor-completions for PREFIX=/usr).
INST_BASH    := $(DESTDIR)$(PREFIX)/share/bash-completion/completions
INST_ZSH     := $(DESTDIR)$(PREFIX)/share/zsh/$(if $(filter /usr,$(PREFIX)),vendor-completions,site-functions)
MAN_PAGES    := $(patsubst docs/man/%.scd,$(BUILD)/man/%,$(wildcard docs/man/*.scd))
PREFIX_SED   := sed -e 's|/usr/local/|$(PREFIX)/|g'

.PHONY: install uninstall man
man:
	@if ! command -v scdoc >/dev/null; then \
	  echo "man: missing Debian package: scdoc"; \
	  if ! command -v apt-get >/dev/null; then echo "man: no apt-get here; install scdoc by hand" >&2; exit 1; fi; \
	  if [ "$$(id -u)" != 0 ]; then echo "man: not root; run: sudo apt-get install scdoc" >&2; exit 1; fi; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q --no-install-recommends scdoc || \
	    { apt-get update -q && apt-get install -y -q --no-install-recommends scdoc; }; \
	fi
	@$(MAKE) --no-print-directory $(MAN_PAGES)

$(BUILD)/man/%: docs/man/%.scd
	@mkdir -p $(dir $@)
	scdoc < $< > $@.tmp || { rm -f $@.tmp; exit 1; }
	mv $@.tmp $@

install: all man
	install -d $(INST_BIN) $(INST_LIBEXEC) $(INST_DOC)/examples $(INST_UNIT) \
	  $(INST_MAN)/man5 $(INST_MAN)/man8 $(INST_BASH) $(INST_ZSH)
	install -m 644 ctl/completion/emperorctl.bash $(INST_BASH)/emperorctl
	install -m 644 ctl/completion/_emperorctl $(INST_ZSH)/_emperorctl
	install -m 755 $(BUILD)/emperor $(BUILD)/vassal $(INST_BIN)/
	if [ -x $(BUILD)/emperorctl ]; then install -m 755 $(BUILD)/emperorctl $(INST_BIN)/; fi
	install -m 755 $(BUILD)/examples/hello-worker $(INST_LIBEXEC)/
	install -m 644 $(filter %.5,$(MAN_PAGES)) $(INST_MAN)/man5/
	install -m 644 $(filter %.8,$(MAN_PAGES)) $(INST_MAN)/man8/
	$(PREFIX_SED) docs/examples/hello.yaml > $(INST_DOC)/examples/hello.yaml
	$(PREFIX_SED) docs/emperor.service > $(INST_UNIT)/emperor.service
	chmod 644 $(INST_DOC)/examples/hello.yaml $(INST_UNIT)/emperor.service

# Only this project's own directories are removed (when empty), never bin/ or man8/.
uninstall:
	rm -f $(INST_BIN)/emperor $(INST_BIN)/vassal $(INST_BIN)/emperorctl
	rm -f $(INST_LIBEXEC)/hello-worker $(INST_DOC)/examples/hello.yaml
	rm -f $(patsubst $(BUILD)/man/%,$(INST_MAN)/man5/%,$(filter %.5,$(MAN_PAGES)))
	rm -f $(patsubst $(BUILD)/man/%,$(INST_MAN)/man8/%,$(filter %.8,$(MAN_PAGES)))
	rm -f $(INST_UNIT)/emperor.service
	rm -f $(INST_BASH)/emperorctl $(INST_ZSH)/_emperorctl
	rmdir $(INST_DOC)/examples $(INST_DOC) $(INST_LIBEXEC) 2>/dev/null || true

# Benchmarks against uWSGI (issue 9): not part of `make test`.
bench: deps
	@$(MAKE) --no-print-directory all
	bench/run

# ---- fuzzing (issue 8): tests/fuzz/README.md ----------------------------------------------
#
#   make fuzz [FUZZ_SECONDS=20]   builds each libFuzzer target tests/fuzz/fuzz_*.c into
#                                 $(BUILD)/fuzz/, runs it FUZZ_SECONDS over a scratch copy
#                                 of its corpus (and its regressions), fails on any crash
#
# The sources a target links are compiled again by clang with the fuzzer's
# instrumentation, into $(BUILD)/fuzz/obj/ ($(BUILD)/obj/ is left alone).

FUZZ_SECONDS ?= 20
FUZZ_CC      ?= clang
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS  := $(PROJECT_CFLAGS) -g -O1 $(FUZZ_SAN)
FUZZ_NAMES   := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS    := $(addprefix $(BUILD)/fuzz/,$(FUZZ_NAMES))
FUZZ_SRC_fuzz_config       := lib/config.c lib/config_schema.c lib/config_kinds.c lib/config_scalars.c lib/config_yaml.c lib/config_envfile.c lib/cronexpr.c \
                              lib/parse.c lib/util.c
FUZZ_SRC_fuzz_spool        := vassal/spool.c lib/util.c lib/parse.c
FUZZ_SRC_fuzz_subscription := vassal/subscription.c lib/log.c lib/jsonout.c lib/util.c lib/parse.c
FUZZ_SRC_fuzz_router_head  := vassal/http_head.c vassal/subscription.c lib/log.c lib/jsonout.c lib/util.c lib/parse.c
FUZZ_DEB_PKGS := clang libclang-rt-14-dev

.PHONY: fuzz fuzz-deps fuzz-build
fuzz: fuzz-deps
	@$(MAKE) --no-print-directory fuzz-build
	@tests/fuzz/run $(BUILD)/fuzz $(FUZZ_SECONDS) $(FUZZ_BINS)

fuzz-build: $(FUZZ_BINS)

fuzz-deps:
	@missing=""; for p in $(FUZZ_DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	echo "fuzz: missing Debian packages:$$missing"; \
	if ! command -v apt-get >/dev/null; then echo "fuzz: no apt-get here; install them by hand" >&2; exit 1; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "fuzz: not root; run: sudo apt-get install$$missing" >&2; exit 1; fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get install -y -q --no-install-recommends $$missing || \
	  { apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; }

$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

define FUZZ_TARGET
$(BUILD)/fuzz/$(1): $(BUILD)/fuzz/obj/tests/fuzz/$(1).o $(patsubst %.c,$(BUILD)/fuzz/obj/%.o,$(FUZZ_SRC_$(1)))
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $$@ $$^ $(LIBS)
endef
$(foreach t,$(FUZZ_NAMES),$(eval $(call FUZZ_TARGET,$(t))))

-include $(shell find $(BUILD)/fuzz/obj -name '*.d' 2>/dev/null)
