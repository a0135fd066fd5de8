# acctmap: plain GNU make. See README.md "Building" and STYLE.md section 8.

CC ?= cc
CFLAGS ?= -O2 -g
WARN = -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
ifeq ($(WERROR),1)
WARN += -Werror
endif

PKGS = libcurl jansson libxxhash libpsl libidn2 libutf8proc libmicrohttpd libpq xlsxwriter
# CRoaring ships no .pc file in Debian 12.
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lroaring -lpthread -lm

BASE_CFLAGS = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I. -Iinclude -Isrc $(PKG_CFLAGS) $(WARN)
ifeq ($(ARENA_DEBUG),1)
BASE_CFLAGS += -DARENA_DEBUG
endif

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
BASE_CFLAGS += -DAM_VERSION='"$(VERSION)"'
# Data files (data/free-domains.txt); ACCTMAP_DATA_DIR overrides at run time.
DATA_DIR ?= $(CURDIR)/data
BASE_CFLAGS += -DAM_DATA_DIR='"$(DATA_DIR)"'

LIB_SRC := $(filter-out src/main.c,$(wildcard src/*.c)) $(wildcard connectors/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_NAMES := $(patsubst tests/%.c,%,$(TEST_SRC))
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES := $(patsubst tests/fuzz/%.c,%,$(FUZZ_SRC))

# Release build: build/
OBJ := $(patsubst %.c,build/obj/%.o,$(LIB_SRC))
# Sanitized test build: build/san/
SAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -DAM_DEBUG
SAN_OBJ := $(patsubst %.c,build/san/obj/%.o,$(LIB_SRC))

# Debian packages: build, test, demo. The tests' PostgreSQL server (postgresql-15) is
# installed by tests/pg.sh when missing.
DEB_BUILD = build-essential pkg-config libcurl4-openssl-dev libjansson-dev libxxhash-dev \
	libroaring-dev libpq-dev libpsl-dev publicsuffix libidn2-dev libutf8proc-dev \
	libxlsxwriter-dev libmicrohttpd-dev libcmocka-dev
# What the tests drive besides the build: a real browser for the HTML report, unzip for XLSX.
DEB_TEST = chromium unzip
DEB_FUZZ = clang libclang-rt-14-dev

.PHONY: all test check deps deps-test deps-fuzz demo fuzz bench lint format clean

all: build/acctmap

build/libacctmap.a: $(OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

build/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

build/acctmap: build/obj/src/main.o build/libacctmap.a
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS)

# ---- tests: always sanitized -------------------------------------------------

build/san/libacctmap.a: $(SAN_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

build/san/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(SAN_FLAGS) -MMD -MP -c $< -o $@

build/san/acctmap: build/san/obj/src/main.o build/san/libacctmap.a
	$(CC) $(SAN_FLAGS) -o $@ $^ $(PKG_LIBS)

# tests/helpers.c and the fake CRM server (tests/fake_crm.c) are linked into
# every test, not tests of their own.
TEST_OBJ = build/san/obj/tests/helpers.o build/san/obj/tests/fake_crm.o

build/san/tests/%: build/san/obj/tests/%.o $(TEST_OBJ) build/san/libacctmap.a
	@mkdir -p $(@D)
	$(CC) $(SAN_FLAGS) -o $@ $^ $(PKG_LIBS) -lcmocka

build/san/obj/tests/helpers.o: tests/helpers.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(SAN_FLAGS) -MMD -MP -c $< -o $@

build/san/obj/tests/fake_crm.o: tests/fake_crm.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(SAN_FLAGS) -MMD -MP -c $< -o $@

test check: deps deps-test
	$(MAKE) --no-print-directory test-build
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
		tests/pg.sh run tests/run.sh build/san $(TEST_NAMES)

.PHONY: test-build
test-build: build/san/acctmap $(addprefix build/san/tests/,$(TEST_NAMES))

# ---- the demo ---------------------------------------------------------------

demo: deps
	$(MAKE) --no-print-directory all
	cd fixtures/demo && ../../build/acctmap run && ../../build/acctmap matrix

# ---- install what is missing (idempotent) -----------------------------------

deps:
	@tools/deps.sh $(DEB_BUILD)

deps-test:
	@tools/deps.sh $(DEB_TEST)

deps-fuzz:
	@tools/deps.sh $(DEB_FUZZ)

# ---- fuzzing (clang + libFuzzer) ---------------------------------------------

FUZZ_CC = clang
FUZZ_FLAGS = -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -DAM_DEBUG
FUZZ_OBJ := $(patsubst %.c,build/fuzz/obj/%.o,$(LIB_SRC))
FUZZ_SECONDS ?= 60

build/fuzz/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(BASE_CFLAGS) $(FUZZ_FLAGS) -MMD -MP -c $< -o $@

build/fuzz/libacctmap.a: $(FUZZ_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

build/fuzz/%: tests/fuzz/%.c build/fuzz/libacctmap.a
	$(FUZZ_CC) $(BASE_CFLAGS) -O1 -g -fsanitize=fuzzer,address,undefined -DAM_DEBUG -o $@ $^ $(PKG_LIBS)

fuzz: deps deps-fuzz
	$(MAKE) --no-print-directory $(addprefix build/fuzz/,$(FUZZ_NAMES))
	@for f in $(FUZZ_NAMES); do \
		mkdir -p build/fuzz/corpus/$$f; \
		echo "== $$f ($(FUZZ_SECONDS) s)"; \
		seeds=""; [ -d tests/fuzz/corpus/$$f ] && seeds=tests/fuzz/corpus/$$f; \
		build/fuzz/$$f -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
			build/fuzz/corpus/$$f $$seeds || exit 1; \
	done

# ---- benchmarks: never part of make test -------------------------------------

BENCH_BINS := $(patsubst bench/%.c,build/bench/%,$(wildcard bench/*.c))

bench: deps all $(BENCH_BINS)
	bench/run.sh

build/bench/%: bench/%.c build/libacctmap.a
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -o $@ $^ $(PKG_LIBS)

# The pull benchmark serves its pages with the tests' fake CRM server.
build/bench/bench_pull: bench/bench_pull.c build/obj/tests/fake_crm.o build/libacctmap.a
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -o $@ $^ $(PKG_LIBS)

# ---- hygiene -----------------------------------------------------------------

lint:
	@! grep -nE '\b(strcpy|strcat|sprintf|vsprintf|strtok|atoi|atol|gets|system)\s*\(' \
		--include='*.c' --include='*.h' -r src connectors include tests bench \
		| grep -v 'snprintf\|vsnprintf' || { echo "lint: banned function (STYLE.md 6)"; exit 1; }
	@echo "lint: ok"

format:
	clang-format -i $(wildcard include/*.h include/acctmap/*.h src/*.c src/*.h connectors/*.c tests/*.c tests/*.h tests/fuzz/*.c bench/*.c)

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
