# boundopt build.  `make help` lists the targets.
#
# Dependencies come from Debian packages (scripts/deps.sh installs the missing ones as root, or
# prints the apt-get command otherwise).  Compiler and library flags come from pkg-config, so the
# build follows whatever PETSc / HDF5 / BLAS the machine has.

PREFIX    ?= /usr/local
CC        := mpicc
PKGS      := PETSc hdf5-openmpi scalapack-openmpi openblas ompi libpng zlib yaml-0.1 fftw3
VERSION   := 0.1.0
GIT_REV   := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

OPT       ?= -O3 -march=x86-64-v2
CFLAGS    ?= $(OPT) -g
WARN      := -Wall -Wextra -Wno-unused-parameter
CPPFLAGS  += -std=c17 -D_POSIX_C_SOURCE=200809L -Iinclude -Isolvers $(PKG_CFLAGS)
LDLIBS    += $(PKG_LIBS) -lm

BUILD     ?= build
BIN       ?= bin

SOLVER_SRC := $(wildcard solvers/*.c solvers/parallel/*.c)
LIB_SRC    := $(SOLVER_SRC) $(wildcard src/core/*.c src/io/*.c src/tasks/*.c)
MAIN_SRC   := src/main.c
LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/%.o)
MAIN_OBJ   := $(MAIN_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRC   := $(wildcard tests/tools/*.c benchmarks/*.c)
TOOL_BIN   := $(patsubst %.c,$(BUILD)/%,$(TOOL_SRC))
DEPFILES   := $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d)

.PHONY: all deps bench-deps run test unit mpitest asan bench install clean help check-deps tools FORCE

all: check-deps $(BIN)/boundopt

help:
	@echo "make deps        install the Debian packages boundopt needs (as root; else prints apt-get)"
	@echo "make             build bin/boundopt"
	@echo "make run         deps, build, import Fashion-MNIST, run the default job on 2 ranks"
	@echo "make test        deps, build, run every unit and MPI integration test"
	@echo "make asan        the same tests under AddressSanitizer + UBSan (build-asan/)"
	@echo "make bench-deps  install the benchmark peers (scikit-learn, ...)"
	@echo "make bench       run benchmarks/ (JSON lines)"
	@echo "make install PREFIX=/opt/boundopt"

deps:
	@bash scripts/deps.sh

bench-deps:
	@bash scripts/deps.sh --bench

check-deps:
	@pkg-config --exists $(PKGS) || { echo "boundopt: build: missing development packages; expected them installed (run 'make deps')"; exit 1; }

$(BIN)/boundopt: $(MAIN_OBJ) $(BUILD)/libboundopt.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libboundopt.a: $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -MMD -MP -c -o $@ $<

$(BUILD)/tests/test_%: tests/unit/test_%.c $(BUILD)/libboundopt.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $< $(BUILD)/libboundopt.a $(LDLIBS) -lcmocka

$(BUILD)/tests/tools/%: tests/tools/%.c $(BUILD)/libboundopt.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $< $(BUILD)/libboundopt.a $(LDLIBS)

$(BUILD)/benchmarks/%: benchmarks/%.c $(BUILD)/libboundopt.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $< $(BUILD)/libboundopt.a $(LDLIBS)

tools: $(TOOL_BIN)

# The git revision goes into version.o only, rebuilt when the revision (or dirtiness) changes.
$(BUILD)/git_rev: FORCE
	@mkdir -p $(@D)
	@echo '$(GIT_REV)' | cmp -s - $@ || echo '$(GIT_REV)' > $@
$(BUILD)/src/core/version.o: $(BUILD)/git_rev
$(BUILD)/src/core/version.o: CPPFLAGS += -DBO_VERSION='"$(VERSION)"' -DBO_GIT_REV='"$(GIT_REV)"'
FORCE:

run: deps
	@$(MAKE) --no-print-directory all tools
	@bash scripts/run-default.sh

test: deps
	@$(MAKE) --no-print-directory all tools $(UNIT_BIN)
	@BUILD=$(BUILD) BIN=$(BIN) bash tests/run.sh

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan BIN=build-asan/bin \
	  OPT="-O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  all tools $(UNIT_SRC:tests/unit/%.c=build-asan/tests/%)
	gcc -shared -fPIC -O2 -o build-asan/nodlclose.so tests/sanitize/nodlclose.c
	@BUILD=build-asan BIN=build-asan/bin SANITIZE=1 bash tests/run.sh

bench: all tools
	@BUILD=$(BUILD) BIN=$(BIN) bash benchmarks/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/include/boundopt $(DESTDIR)$(PREFIX)/lib \
	           $(DESTDIR)$(PREFIX)/share/boundopt/jobs $(DESTDIR)$(PREFIX)/share/boundopt/slurm
	install -m 755 $(BIN)/boundopt $(DESTDIR)$(PREFIX)/bin/
	install -m 644 include/boundopt/*.h $(DESTDIR)$(PREFIX)/include/boundopt/
	install -m 644 $(BUILD)/libboundopt.a $(DESTDIR)$(PREFIX)/lib/
	install -m 644 jobs/*.yaml $(DESTDIR)$(PREFIX)/share/boundopt/jobs/
	-install -m 755 slurm/* $(DESTDIR)$(PREFIX)/share/boundopt/slurm/

clean:
	rm -rf build build-asan bin

-include $(DEPFILES)
