# soko - one non-recursive GNU Makefile (STYLE.md §11).
#
#   make            build everything into build/
#   make run        install missing packages (as root), build, start sokod
#   make test       install, build, run every suite, then again under
#                   ASan+UBSan (build/asan)
#   make check      unit + store (SQLite and a throwaway PostgreSQL) +
#                   integration + sandbox suites on the current build
#   make bench      benchmarks -> bench/results.tsv
#   make asan       the suites under -fsanitize=address,undefined
#   make fuzz       libFuzzer on every codec target (FUZZ_SECONDS each)
#   make WERROR=    build without -Werror (newer compilers only)

BUILD   ?= build
SAN     ?=
CC      ?= gcc
WERROR  ?= -Werror
PYTHON  ?= python3

PKGS := libevent libevent_pthreads libevent_openssl sqlite3 libpq openssl \
	jansson libcurl

WARN := -std=c17 -Wall -Wextra $(WERROR) -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wold-style-definition -Wpointer-arith \
	-Wcast-qual -Wwrite-strings -Wformat=2 -Wundef -Wvla \
	-Wdouble-promotion
HARDEN := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
OPT    := -O2 -g
ifneq ($(SAN),)
OPT    := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
HARDEN := -fPIE
endif
LDHARDEN := -pie -Wl,-z,relro,-z,now

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# protocols/: pure ISO C, no feature macros, conversions are errors.
PROTO_CFLAGS := $(WARN) -pedantic -Wconversion -Wsign-conversion $(OPT) \
	$(HARDEN) -MMD -MP
SERVER_CFLAGS = $(WARN) -D_DEFAULT_SOURCE $(OPT) $(HARDEN) -MMD -MP \
	-Iprotocols -Iserver -Iinclude -I$(BUILD)/gen $(PKG_CFLAGS)
LDFLAGS_ALL = $(OPT) $(LDHARDEN) -pthread

.PHONY: all deps deps-test run test check check-unit check-docs check-store \
	check-store-pg check-integration check-fuzz check-sandbox fuzz asan bench \
	clean format format-check
all:

include protocols/module.mk
include terminal/module.mk
include firmware-sim/module.mk
include server/module.mk
include tests/module.mk
include tests/fuzz/module.mk
include tests/sandbox/module.mk
include bench/module.mk

all: $(ALL_BINS)

# ---- the two front-door commands -------------------------------------
deps:
	@sh scripts/deps.sh build
deps-test:
	@sh scripts/deps.sh test

run: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/run.sh $(BUILD)

test: deps-test
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory check
	@$(MAKE) --no-print-directory asan

check: check-unit check-fuzz check-docs check-store check-sandbox \
	check-integration

asan:
	@$(MAKE) --no-print-directory BUILD=build/asan SAN=1 check

clean:
	rm -rf build bench/results.tsv

format:
	clang-format -i $$(git ls-files '*.c' '*.h')
format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

-include $(ALL_DEPS)
