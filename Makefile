# raftd build. `make` builds build/release; `make debug` / `make asan` build their own trees.
# `make test` installs what is missing, builds, and runs every suite (release and ASan+UBSan)
# ending with one line "N passed, M failed". See README.md.

MAKEFLAGS += --no-builtin-rules --no-print-directory
ifeq ($(filter -j%,$(MAKEFLAGS)),)
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
endif
.DEFAULT_GOAL := all
.SUFFIXES:

VARIANT ?= release
B := build/$(VARIANT)

# ---- packages (make deps) ---------------------------------------------------------------
# Build and run: compiler, libraries, pkg-config. Test: sanitizer runtimes come with g++.
DEPS_PKGS := g++ make pkg-config libuv1-dev libmsgpack-cxx-dev libleveldb-dev libspdlog-dev \
             doctest-dev libtomlplusplus-dev libcli11-dev python3-msgpack
DEPS_TEST_PKGS :=

# ---- flags ------------------------------------------------------------------------------
CXX := g++
# Lazy (=) so pkg-config runs only when compiling, after `make deps` had its chance.
PKG_CFLAGS = $(shell pkg-config --cflags libuv spdlog 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs libuv spdlog 2>/dev/null) -lleveldb -lpthread
CPPFLAGS := -I. -Iclients/cpp -DMSGPACK_NO_BOOST -DMSGPACK_DEFAULT_API_VERSION=3
CXXFLAGS_BASE := -std=c++20 -g -Wall -Wextra -Werror -MMD -MP
ifeq ($(VARIANT),release)
CXXFLAGS_VARIANT := -O2
else ifeq ($(VARIANT),debug)
CXXFLAGS_VARIANT := -O0 -DRAFTD_DEBUG
else ifeq ($(VARIANT),asan)
CXXFLAGS_VARIANT := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
                    -fno-sanitize-recover=all
LDFLAGS_VARIANT := -fsanitize=address,undefined
else
$(error unknown VARIANT '$(VARIANT)': use release, debug or asan)
endif
CXXFLAGS = $(CXXFLAGS_BASE) $(CXXFLAGS_VARIANT) $(PKG_CFLAGS)
LDFLAGS = $(LDFLAGS_VARIANT)

# ---- modules ----------------------------------------------------------------------------
# Each module folder is one static library of its non-test, non-main sources, and one
# doctest suite of its *_test.cpp files. Order: dependents before dependencies (link order).
MODULES := clients daemon ipc wal raft
lib_srcs = $(filter-out %_test.cpp %main.cpp,$(shell find $(1) -name '*.cpp' 2>/dev/null))
test_srcs = $(shell find $(1) -name '*_test.cpp' 2>/dev/null)
obj = $(patsubst %.cpp,$(B)/obj/%.o,$(1))

LIBS := $(foreach m,$(MODULES),$(if $(call lib_srcs,$(m)),$(B)/lib/lib$(m).a))
TEST_MODULES := $(foreach m,$(MODULES),$(if $(call test_srcs,$(m)),$(m)))
TEST_BINS := $(foreach m,$(TEST_MODULES),$(B)/tests/$(m)_test)
BINS :=

ALL_OBJS := $(call obj,$(foreach m,$(MODULES),$(call lib_srcs,$(m)) $(call test_srcs,$(m)))) \
            $(B)/obj/tests/doctest_main.o

.PHONY: all debug asan deps test test-asan check-suites clean format
all: $(LIBS) $(BINS) $(TEST_BINS)

debug:
	@$(MAKE) VARIANT=debug all
asan:
	@$(MAKE) VARIANT=asan all

$(B)/obj/%.o: %.cpp
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

define module_rules
$(B)/lib/lib$(1).a: $(call obj,$(call lib_srcs,$(1)))
	@mkdir -p $$(@D)
	@rm -f $$@
	ar rcs $$@ $$^
$(B)/tests/$(1)_test: $(call obj,$(call test_srcs,$(1))) $(B)/obj/tests/doctest_main.o $(LIBS)
	@mkdir -p $$(@D)
	$(CXX) $(LDFLAGS) -o $$@ $$(filter %.o,$$^) $(LIBS) $$(PKG_LIBS)
endef
$(foreach m,$(MODULES),$(eval $(call module_rules,$(m))))

-include $(ALL_OBJS:.o=.d)

# ---- set-up and tests -------------------------------------------------------------------
# Idempotent: asks dpkg what is missing and only then runs apt-get update + install.
deps:
	@missing=""; for p in $(DEPS_PKGS) $(DEPS_TEST_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all packages present"; exit 0; fi; \
	echo "deps: installing:$$missing"; \
	if [ "$$(id -u)" -eq 0 ]; then SUDO=""; else \
	  echo "deps: not root, using sudo for apt-get (you may be asked for your password)"; SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing

# Release suites, then the same suites under ASan+UBSan, then script tests; one summary.
test: deps
	@$(MAKE) VARIANT=release all
	@$(MAKE) VARIANT=asan all
	@tests/run-suites build/release build/asan

test-asan: deps
	@$(MAKE) VARIANT=asan all
	@tests/run-suites build/asan

clean:
	rm -rf build

format:
	@find raft wal ipc daemon clients tests -name '*.cpp' -o -name '*.h' | xargs -r clang-format -i

# ---- daemon: the raftd binary and its generated docs ------------------------------------
BINS += $(B)/bin/raftd
all: $(B)/bin/raftd
$(B)/bin/raftd: $(B)/obj/daemon/main.o $(LIBS)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBS) $(PKG_LIBS)
-include $(B)/obj/daemon/main.d

# Rewrites docs/configuration.md and systemd/raftd.toml from the option table in
# daemon/config_table.cpp; tests/scripts/config_docs.sh fails when they drift.
.PHONY: config-docs
config-docs: $(B)/bin/raftd
	$(B)/bin/raftd --print-config-reference > docs/configuration.md
	$(B)/bin/raftd --print-example-config > systemd/raftd.toml

# ---- ipc + clients: raftctl, the fuzz target, soak ----------------------------------------
# raftctl is built on libclients (<raftd/client.h>); docs/raftctl.md is its manual.
BINS += $(B)/bin/raftctl
all: $(B)/bin/raftctl
$(B)/bin/raftctl: $(B)/obj/clients/raftctl/main.o $(LIBS)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBS) $(PKG_LIBS)
-include $(B)/obj/clients/raftctl/main.d

# fake_raftd: ipc::Server over the in-memory FakeBackend, for client script tests.
all: $(B)/tests/fake_raftd
$(B)/tests/fake_raftd: $(B)/obj/ipc/testing/fake_raftd_main.o $(LIBS)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBS) $(PKG_LIBS)
-include $(B)/obj/ipc/testing/fake_raftd_main.d
