# Loom — one plain Makefile.
#
#   make            build every program into build/bin
#   make up         install packages, build, start the whole stack under var/ (deploy/up.sh)
#   make install    loomctl into $(PREFIX)/bin (PREFIX=/usr/local)
#   make down       stop it;  make status  show its processes
#   make check      install test packages, run unit, integration and e2e tests
#   make lint       format check, banned functions, every header compiles alone
#   make chaos      1,000 beads (100 per scenario) through the whole stack while executors, loom-api,
#                   loom-sse and PostgreSQL are killed, connections cut and held, nginx reloaded
#                   and the provider fails; a table of losses, doubles and recovery times
#   make fuzz       libFuzzer harnesses (tests/fuzz/) built with clang into build-fuzz/, each run
#                   FUZZ_SECONDS (60); FUZZ_TARGETS="route body" picks some
#   make check-asan make check with SANITIZE=address,undefined (its own build tree)
#   make check-tsan the concurrent e2e tests against loom-api built with SANITIZE=thread
#   make valgrind   the workers under valgrind --leak-check=full for a short stub workload
#   make bench-api  wrk through nginx: API routes against a static file
#   make bench-dispatch  bead → claimed run latency, claim+finish throughput, against
#                   graphile-worker and pg-boss on the same durable PostgreSQL
#   make bench-sse  1k, 5k and 10k event streams through nginx: NOTIFY → client latency,
#                   memory per stream (loom-sse + nginx), /health latency meanwhile
#   make multihost  db, app1, app2 and nginx as hosts in network namespaces (root): app2 is cut
#                   off mid-run and every bead still closes (tests/multihost/run.sh, ~80 s)
#
# SANITIZE=address,undefined (or thread) builds everything with those sanitizers.

CC       ?= cc
PKGS     := libpq json-c libcurl libsodium libargon2
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wformat=2 -Wvla -fno-common
HARDEN   := -fstack-protector-strong -D_FORTIFY_SOURCE=2
OPT      ?= -O2 -g
CFLAGS   ?=
CFLAGS   += -std=c11 -D_GNU_SOURCE $(WARN) $(HARDEN) $(OPT) -pthread $(PKG_CFLAGS) -Ishared -Ifcgi -Iworkers
LDLIBS   := $(PKG_LIBS) -pthread
FCGI_LIBS := -lfcgi

# quiet by default; V=1 shows the commands
Q := $(if $(V),,@)
B := build

# SANITIZE=address,undefined (or thread): a separate tree, build-address-undefined/, whose
# programs the test stack runs (LOOM_BIN_DIR); UBSan findings abort, so tests fail on them.
ifneq ($(SANITIZE),)
comma := ,
B       := build-$(subst $(comma),-,$(SANITIZE))
CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
OPT     := -O1 -g
export LOOM_BIN_DIR := $(abspath $(B)/bin)
# detect_leaks=0: the daemons exit with their threads still running; leaks are valgrind's job
export ASAN_OPTIONS := detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS := print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS := halt_on_error=0 second_deadlock_stack=1 history_size=4
endif
# FUZZ=1 (set by `make fuzz`): clang, libFuzzer's coverage hooks, ASan and UBSan, in build-fuzz/.
ifeq ($(FUZZ),1)
CC      := clang
B       := build-fuzz
CFLAGS  += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=all
OPT     := -O1 -g
endif
BIN := $(B)/bin

SHARED_SRC := $(sort $(wildcard shared/*.c))
FCGI_COMMON_SRC := fcgi/http.c fcgi/router.c fcgi/query.c fcgi/input.c fcgi/server.c
API_MODULES := fcgi/routes.c fcgi/auth.c fcgi/metrics.c fcgi/prom.c fcgi/export.c
API_SRC    := fcgi/loom_api.c $(API_MODULES) $(sort $(wildcard fcgi/api_*.c))
SSE_SRC    := fcgi/loom_sse.c $(sort $(wildcard fcgi/sse_*.c))
WORKER_COMMON_SRC := workers/worker.c
# The action router's modules: the executor's, and loom-api's for pair programming (POST
# /api/v1/pair carries out the actions a model proposes in the bead's worktree, sandboxed).
EXECUTOR_SRC := workers/actions.c workers/budget.c workers/guard.c workers/history.c workers/proc.c \
                workers/sandbox.c workers/workspace.c workers/tools.c
DAEMONS    := loom-dispatcher loom-executor loom-ralph

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))
SHARED_OBJ := $(call obj,$(SHARED_SRC))
FCGI_COMMON_OBJ := $(call obj,$(FCGI_COMMON_SRC))
WORKER_COMMON_OBJ := $(call obj,$(WORKER_COMMON_SRC))

PROGRAMS := $(BIN)/loom-api $(BIN)/loom-sse $(BIN)/loom-migrate $(addprefix $(BIN)/,$(DAEMONS)) \
            $(BIN)/loomctl

.PHONY: all
all: $(PROGRAMS)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BIN)/loom-api: $(call obj,$(API_SRC) $(EXECUTOR_SRC)) $(FCGI_COMMON_OBJ) $(SHARED_OBJ)
	@mkdir -p $(BIN)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(FCGI_LIBS) $(LDLIBS)

$(BIN)/loom-sse: $(call obj,$(SSE_SRC)) $(FCGI_COMMON_OBJ) $(SHARED_OBJ)
	@mkdir -p $(BIN)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(FCGI_LIBS) $(LDLIBS)

$(BIN)/loom-migrate: $(call obj,workers/migrate.c workers/skill.c) $(SHARED_OBJ)
	@mkdir -p $(BIN)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BIN)/loom-executor: $(call obj,workers/executor.c $(EXECUTOR_SRC)) $(WORKER_COMMON_OBJ) $(SHARED_OBJ)
	@mkdir -p $(BIN)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BIN)/loom-ralph: $(call obj,workers/ralph.c workers/motivation.c) $(WORKER_COMMON_OBJ) $(SHARED_OBJ)
	@mkdir -p $(BIN)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# loomctl, the command-line client (cli/): libcurl and json-c only, a few shared/ modules.
CLI_SRC    := $(sort $(wildcard cli/*.c))
CLI_SHARED := shared/strbuf.c shared/xalloc.c shared/httpc.c shared/err.c shared/config.c \
              shared/log.c
CLI_LIBS   := $(shell pkg-config --libs libcurl json-c 2>/dev/null)
$(BIN)/loomctl: $(call obj,$(CLI_SRC) $(CLI_SHARED))
	@mkdir -p $(BIN)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(CLI_LIBS)

$(BIN)/loom-%: $(B)/obj/workers/%.o $(WORKER_COMMON_OBJ) $(SHARED_OBJ)
	@mkdir -p $(BIN)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

-include $(shell find $(B) -name '*.d' 2>/dev/null)

# ---- tests ---------------------------------------------------------------------------------
UNIT_SRC := $(sort $(wildcard tests/unit/*/test_*.c))
UNIT_BIN := $(patsubst tests/unit/%.c,$(B)/tests/unit/%,$(UNIT_SRC))
UNIT_LIB_OBJ := $(SHARED_OBJ) $(FCGI_COMMON_OBJ) \
                $(call obj,$(API_MODULES) $(sort $(wildcard fcgi/api_*.c)) workers/skill.c) \
                $(call obj,$(EXECUTOR_SRC) workers/motivation.c) \
                $(call obj,$(filter-out fcgi/loom_sse.c,$(SSE_SRC)))
INTEG_SRC := $(sort $(wildcard tests/integration/test_*.c))
INTEG_BIN := $(patsubst tests/integration/%.c,$(B)/tests/integration/%,$(INTEG_SRC))

$(B)/tests/%: tests/%.c tests/unit/testlib.h $(UNIT_LIB_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) -MMD -MP -MF $@.d -Itests/unit $(LDFLAGS) $< $(UNIT_LIB_OBJ) -o $@ \
		$(FCGI_LIBS) $(LDLIBS)

# The fuzz harnesses with a replay main: every seed and every regression input, in make check.
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(sort $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_REPLAY_BIN := $(addprefix $(B)/tests/fuzz/replay_,$(FUZZ_NAMES))

$(B)/tests/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c tests/fuzz/fuzz.h $(UNIT_LIB_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) -Itests/fuzz -DFUZZ_NAME='"$*"' -DFUZZ_REPLAY $(LDFLAGS) $< tests/fuzz/replay.c \
		$(UNIT_LIB_OBJ) -o $@ $(FCGI_LIBS) $(LDLIBS)

.PHONY: test-deps unit e2e check
test-deps:
	@deploy/install-deps.sh test

unit: $(UNIT_BIN) $(FUZZ_REPLAY_BIN)
	@for t in $(UNIT_BIN) $(FUZZ_REPLAY_BIN); do $$t | grep -v '^ok' || exit 1; done

e2e: all
	@tests/lib/run-e2e.sh

# The connection holder of make chaos: libpq only.
CHAOS_PGHOLD := $(B)/tests/chaos/pghold
$(CHAOS_PGHOLD): tests/chaos/pghold.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CFLAGS) -MMD -MP -MF $@.d $(LDFLAGS) $< -o $@ $(LDLIBS)

# The README's test command: packages, build, every layer, one closing "N passed, M failed" line.
check: test-deps
	@$(MAKE) --no-print-directory all $(UNIT_BIN) $(FUZZ_REPLAY_BIN) $(INTEG_BIN) $(CHAOS_PGHOLD)
	@CHAOS_PGHOLD=$(abspath $(CHAOS_PGHOLD)) tests/lib/check.sh $(UNIT_BIN) $(FUZZ_REPLAY_BIN) -- \
		$(INTEG_BIN)

# Faults through the whole stack, one scenario at a time and then all together (tests/chaos/).
.PHONY: chaos
chaos: test-deps
	@$(MAKE) --no-print-directory all $(CHAOS_PGHOLD)
	@CHAOS_PGHOLD=$(abspath $(CHAOS_PGHOLD)) tests/chaos/chaos.sh

# ---- fuzzing and sanitizers ----------------------------------------------------------------
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= $(FUZZ_NAMES)
FUZZ_BIN := $(addprefix $(B)/fuzz/fuzz_,$(FUZZ_NAMES))

$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(UNIT_LIB_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(CC) $(CFLAGS) -fsanitize=fuzzer -Itests/fuzz $< $(UNIT_LIB_OBJ) -o $@ \
		$(FCGI_LIBS) $(LDLIBS)

.PHONY: fuzz fuzz-build check-asan check-tsan valgrind
fuzz-build: $(FUZZ_BIN)

fuzz: test-deps
	@$(MAKE) --no-print-directory FUZZ=1 fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_TARGETS)

check-asan:
	@$(MAKE) --no-print-directory SANITIZE=address,undefined check

# The e2e files that load loom-api from many clients at once, with the workers at work beside
# it (runs.test); work.test's 500-bead throughput test is too slow under TSan (~10x) to pass.
TSAN_E2E ?= tests/e2e/resilience.test.mjs tests/e2e/badinput_scale.test.mjs tests/e2e/api.test.mjs \
            tests/e2e/sse.test.mjs tests/e2e/runs.test.mjs
check-tsan: test-deps
	@$(MAKE) --no-print-directory SANITIZE=thread all
	@log=$$(mktemp "$${TMPDIR:-/tmp}/loom-tsan.XXXXXX"); \
	LOOM_BIN_DIR=$(abspath build-thread/bin) \
		TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1 history_size=4" \
		tests/lib/run-e2e.sh $(TSAN_E2E) >$$log 2>&1; rc=$$?; \
	grep -E '^(not ok|# (pass|fail) |sanitizer reports|--- loom|WARNING: ThreadSanitizer|SUMMARY)' $$log; \
	echo "check-tsan: log in $$log"; exit $$rc

valgrind: test-deps all
	@tests/lib/valgrind.sh

# ---- installing loomctl -------------------------------------------------------------------
PREFIX ?= /usr/local
.PHONY: install
install: $(BIN)/loomctl
	install -D -m 0755 $(BIN)/loomctl $(DESTDIR)$(PREFIX)/bin/loomctl
	@echo "installed $(DESTDIR)$(PREFIX)/bin/loomctl"

# ---- running it ----------------------------------------------------------------------------
.PHONY: up down status deps
deps:
	@deploy/install-deps.sh run

up: deps
	@$(MAKE) --no-print-directory all
	@deploy/up.sh

down:
	@deploy/down.sh

status:
	@deploy/status.sh

# ---- benchmarks ----------------------------------------------------------------------------
.PHONY: bench-api bench-dispatch bench-sse
bench-api: deps
	@$(MAKE) --no-print-directory all
	@tests/bench/bench-api.sh

# The load program of bench-dispatch: libpq and threads only, none of Loom's objects.
BENCH_DISPATCH := $(B)/tests/bench/bench_dispatch
$(BENCH_DISPATCH): tests/bench/bench_dispatch.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CFLAGS) -MMD -MP -MF $@.d $(LDFLAGS) $< -o $@ $(LDLIBS)

bench-dispatch: deps
	@$(MAKE) --no-print-directory all $(BENCH_DISPATCH)
	@LOOM_BIN_DIR=$(abspath $(BIN)) BENCH_DISPATCH=$(abspath $(BENCH_DISPATCH)) \
		tests/bench/bench-dispatch.sh

# The stream client of bench-sse: epoll and plain sockets, libpq for the events it fires.
SSE_CLIENT := $(B)/tests/bench/sse_client
$(SSE_CLIENT): tests/bench/sse_client.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CFLAGS) -MMD -MP -MF $@.d $(LDFLAGS) $< -o $@ $(LDLIBS)

bench-sse: deps
	@$(MAKE) --no-print-directory all $(SSE_CLIENT)
	@LOOM_BIN_DIR=$(abspath $(BIN)) SSE_CLIENT=$(abspath $(SSE_CLIENT)) tests/bench/bench-sse.sh

# ---- multi-host ----------------------------------------------------------------------------
.PHONY: multihost
multihost: deps
	@$(MAKE) --no-print-directory all
	@LOOM_BIN_DIR=$(abspath $(BIN)) tests/multihost/run.sh

# ---- lint ----------------------------------------------------------------------------------
C_FILES := $(shell git ls-files '*.c' '*.h' 2>/dev/null) $(wildcard fcgi/*.[ch] shared/*.[ch] workers/*.[ch])
C_FILES := $(sort $(C_FILES))
HEADERS := $(filter %.h,$(C_FILES))
BANNED  := strcpy|strcat|sprintf|vsprintf|strtok|atoi|atol|sscanf|gets|strncpy

.PHONY: lint format format-check
format:
	clang-format -i $(C_FILES)

format-check:
	@clang-format --dry-run --Werror $(C_FILES)

lint: format-check
	@if grep -nE '(^|[^_a-z0-9])($(BANNED))[[:space:]]*\(' $(C_FILES); then \
		echo "lint: banned function used (see STYLE.md)"; exit 1; fi
	@for h in $(HEADERS); do \
		echo "#include \"$$h\"" | $(CC) $(CFLAGS) -I. -Itests/unit -x c -fsyntax-only - \
			|| { echo "lint: $$h does not compile alone"; exit 1; }; \
	done
	@echo "lint: ok ($(words $(C_FILES)) files)"

.PHONY: clean
clean:
	rm -rf build build-*
