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
# The Go client (clients/go) builds offline from Debian's Go toolchain and Debian's msgpack
# for Go, whose sources land under /usr/share/gocode (see clients/go/README.md).
DEPS_PKGS := g++ make pkg-config libuv1-dev libmsgpack-cxx-dev libleveldb-dev libspdlog-dev \
             libssl-dev doctest-dev libtomlplusplus-dev libcli11-dev python3-msgpack libmicrohttpd-dev \
             golang-go golang-github-vmihailenco-msgpack.v5-dev
# nftables, e2fsprogs, mount: the nemesis suite (partitions, loop-mounted ext4 per node);
# faketime: its clock fault (libfaketime), and expired certificates in the peer TLS tests.
# prometheus (with promtool): the metrics test scrapes a cluster with the real server and
# checks the output and the shipped alert rules. openssl: the command line that
# tools/peer-certs.sh (make certs) runs.
DEPS_TEST_PKGS := openssl systemd clang libclang-rt-14-dev fiu-utils libfiu-dev nftables e2fsprogs \
                  mount faketime python3-pip python3-setuptools python3-venv prometheus

# ---- flags ------------------------------------------------------------------------------
CXX := g++
# Lazy (=) so pkg-config runs only when compiling, after `make deps` had its chance.
# libmicrohttpd: the metrics/health HTTP listener (daemon/http.cpp); openssl: peer TLS.
PKG_CFLAGS = $(shell pkg-config --cflags libuv spdlog openssl 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs libuv spdlog libmicrohttpd openssl 2>/dev/null) -lleveldb -lpthread
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
# The protocol codec (frame + encode/decode of requests, replies and events) is kept out of
# libipc in its own libcodec, which the server, the C++ client and raftbench all link (see
# "the protocol codec" below).
CODEC_SRCS := ipc/frame.cpp ipc/protocol_parse.cpp ipc/protocol_encode.cpp ipc/protocol_decode.cpp
lib_srcs = $(filter-out %_test.cpp %main.cpp $(CODEC_SRCS),$(shell find $(1) -name '*.cpp' 2>/dev/null))
test_srcs = $(shell find $(1) -name '*_test.cpp' 2>/dev/null)
obj = $(patsubst %.cpp,$(B)/obj/%.o,$(1))

LIBS := $(subst /libipc.a,/libipc.a $(B)/lib/libcodec.a,$(foreach m,$(MODULES),$(if $(call lib_srcs,$(m)),$(B)/lib/lib$(m).a)))
TEST_MODULES := $(foreach m,$(MODULES),$(if $(call test_srcs,$(m)),$(m)))
TEST_BINS := $(foreach m,$(TEST_MODULES),$(B)/tests/$(m)_test)
BINS :=

ALL_OBJS := $(call obj,$(foreach m,$(MODULES),$(call lib_srcs,$(m)) $(call test_srcs,$(m)))) \
            $(call obj,$(CODEC_SRCS)) $(B)/obj/tests/doctest_main.o

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

# ---- the protocol codec: libcodec.a ------------------------------------------------------
# ipc/frame.cpp and ipc/protocol_{parse,encode,decode}.cpp: the one C++ codec of the client
# protocol, linked by the server (libipc), the C++ client and raftbench. Besides msgpack-c
# (header-only) it uses only raft/'s vocabulary: raft/types.h (header-only values) and
# Status/Result (raft/status.cpp, taken from libraft, and copied into libraftd-client.a).
# Never: the server, libuv, spdlog or any raft logic. tests/scripts/client_lib_alone.sh
# checks that promise on libraftd-client.a.
$(B)/lib/libcodec.a: $(call obj,$(CODEC_SRCS))
	@mkdir -p $(@D)
	@rm -f $@
	ar rcs $@ $^

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

# raftd-counter, the C++ example application (clients/examples/counter-cpp) on the apply
# loop; linked the way an application links the installed libraftd-client.a: the client
# library, the codec and the Status they use, nothing of the server.
BINS += $(B)/bin/raftd-counter
all: $(B)/bin/raftd-counter
$(B)/bin/raftd-counter: $(B)/obj/clients/examples/counter-cpp/counter_main.o $(B)/lib/libclients.a \
                        $(B)/lib/libcodec.a $(B)/lib/libraft.a
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $(filter %.o,$^) $(filter %.a,$^)
-include $(B)/obj/clients/examples/counter-cpp/counter_main.d
# The load and checker of the exactly-once end-to-end test (tests/scripts/
# clients_exactly_once.sh): client sessions through <raftd/client.h>. Not installed.
all: $(B)/tests/exactly_once_load
$(B)/tests/exactly_once_load: $(B)/obj/tests/integration/exactly_once_main.o $(LIBS)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBS) $(PKG_LIBS) -pthread
-include $(B)/obj/tests/integration/exactly_once_main.d

# The libFuzzer target for the frame decoder and request parser. Built with clang (g++ has no
# libFuzzer) into build/fuzz, outside the variant trees; part of `all` for the release tree
# when clang++ exists. tests/scripts/fuzz_frame.sh runs it ~20 s; `make soak-fuzz` longer.
FUZZ_SRCS := ipc/fuzz/frame_fuzz_main.cpp $(CODEC_SRCS) raft/status.cpp
FUZZ_CXX ?= clang++
ifeq ($(VARIANT),release)
ifneq ($(shell command -v $(FUZZ_CXX) 2>/dev/null),)
all: build/fuzz/frame_fuzz
endif
endif
build/fuzz/frame_fuzz: $(FUZZ_SRCS) $(wildcard ipc/*.h raft/*.h clients/cpp/raftd/error_codes.h)
	@mkdir -p $(@D)
	$(FUZZ_CXX) -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	  $(CPPFLAGS) -o $@ $(FUZZ_SRCS)
# The peer side (tests/scripts/fuzz_peer.sh): TLS records before the handshake completes and
# the plaintext handshake and message frames after it.
PEER_FUZZ_SRCS := daemon/fuzz/peer_fuzz_main.cpp daemon/peer_codec.cpp daemon/tls.cpp \
                  raft/confchange_codec.cpp $(CODEC_SRCS) raft/status.cpp
ifeq ($(VARIANT),release)
ifneq ($(shell command -v $(FUZZ_CXX) 2>/dev/null),)
all: build/fuzz/peer_fuzz
endif
endif
build/fuzz/peer_fuzz: $(PEER_FUZZ_SRCS) $(wildcard daemon/peer_codec.h daemon/tls.h ipc/*.h raft/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CXX) -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	  $(CPPFLAGS) -o $@ $(PEER_FUZZ_SRCS) $$(pkg-config --libs openssl)

# The nemesis suite (tests/nemesis, docs/testing.md): faults on a real cluster, checked for
# linearizability. Needs root. `make nemesis NEMESIS_SECONDS=1800 NEMESIS_SEED=42`.
.PHONY: nemesis
nemesis: $(B)/bin/raftd
	RAFTD_BUILD=$(B) NEMESIS_SECONDS=$(or $(NEMESIS_SECONDS),600) NEMESIS_SEED=$(NEMESIS_SEED) \
	  tests/nemesis/campaign.sh

.PHONY: soak-fuzz
soak: soak-fuzz
soak-fuzz: build/fuzz/frame_fuzz build/fuzz/peer_fuzz
	FUZZ_SECONDS=$${FUZZ_SECONDS:-600} tests/scripts/fuzz_frame.sh
	FUZZ_SECONDS=$${FUZZ_SECONDS:-600} tests/scripts/fuzz_peer.sh

# fake_raftd: ipc::Server over the in-memory FakeBackend, for client script tests.
all: $(B)/tests/fake_raftd
$(B)/tests/fake_raftd: $(B)/obj/ipc/testing/fake_raftd_main.o $(LIBS)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBS) $(PKG_LIBS)
-include $(B)/obj/ipc/testing/fake_raftd_main.d

# ---- wal: crash-test child, benchmark, soak ------------------------------------------------
# wal_crash_child is exec'd by wal_test's crash test (it looks beside its own binary), so the
# suite depends on it. `make soak-wal` runs many more crash iterations than `make test`.
BINS += $(B)/tests/wal_crash_child
all: $(B)/tests/wal_crash_child
$(B)/tests/wal_test: $(B)/tests/wal_crash_child
$(B)/tests/wal_crash_child: $(B)/obj/wal/testing/crash_child_main.o $(LIBS)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBS) $(PKG_LIBS)
-include $(B)/obj/wal/testing/crash_child_main.d

.PHONY: soak soak-wal
soak: soak-wal
soak-wal:
	@$(MAKE) VARIANT=release build/release/tests/wal_test
	RAFTD_WAL_CRASH_ITERATIONS=$${RAFTD_WAL_CRASH_ITERATIONS:-2000} \
	  build/release/tests/wal_test -tc='sigkilled_writer*' --duration=true

# ---- ops: make install / uninstall / deb ------------------------------------------------
# GNU-style directories; DESTDIR stages into a tree (packages, tests). The units name
# /usr/bin/raftd and /etc/raftd; `install` rewrites those paths when PREFIX or sysconfdir
# differ, so an installed unit always starts the installed binary.
PREFIX ?= /usr
DESTDIR ?=
bindir ?= $(PREFIX)/bin
libdir ?= $(PREFIX)/lib
includedir ?= $(PREFIX)/include
datadir ?= $(PREFIX)/share
docdir ?= $(datadir)/doc/raftd
sysconfdir ?= /etc
systemdunitdir ?= $(PREFIX)/lib/systemd/system
sysusersdir ?= $(PREFIX)/lib/sysusers.d
tmpfilesdir ?= $(PREFIX)/lib/tmpfiles.d
INSTALL ?= install

# Installed programs: raftd always, raftctl once a block adds it to BINS. Expanded at use
# (.SECONDEXPANSION below), so blocks further down the Makefile can still append to BINS.
INSTALL_BINS = build/release/bin/raftd $(filter build/release/bin/raftctl,$(subst $(B)/,build/release/,$(BINS)))
INSTALL_UNITS := systemd/raftd.service systemd/raftd@.service systemd/raftd.socket systemd/raftd@.socket
INSTALL_DOCS = README.md $(filter-out docs/README.md,$(wildcard docs/*.md))
# The C++ client: public headers under clients/cpp/raftd/ and one self-contained archive
# (the client's objects plus the protocol codec and the Status it uses), when the client
# exists. No server, libuv or raft logic: tests/scripts/client_lib_alone.sh.
CLIENT_HEADERS = $(wildcard clients/cpp/raftd/*.h)
CLIENT_ARCHIVES = $(if $(CLIENT_HEADERS),build/release/lib/libclients.a build/release/lib/libcodec.a)
CLIENT_LIB := build/release/lib/libraftd-client.a

build/release/lib/libraftd-client.a: $(CLIENT_ARCHIVES) build/release/obj/raft/status.o
	@mkdir -p $(@D)
	@rm -f $@
	@{ echo "CREATE $@"; for a in $(filter %.a,$^); do echo "ADDLIB $$a"; done; \
	  for o in $(filter %.o,$^); do echo "ADDMOD $$o"; done; echo SAVE; echo END; } | ar -M

define unit_rewrite
sed -e 's#/usr/bin/raftd#$(bindir)/raftd#g' -e 's#/usr/share/doc/raftd#$(docdir)#g' \
    -e 's#/etc/raftd#$(sysconfdir)/raftd#g'
endef

.PHONY: install uninstall deb
.SECONDEXPANSION:
install: $$(INSTALL_BINS) $$(if $$(CLIENT_HEADERS),$(CLIENT_LIB))
	$(INSTALL) -d $(DESTDIR)$(bindir) $(DESTDIR)$(systemdunitdir) $(DESTDIR)$(sysusersdir) \
	  $(DESTDIR)$(tmpfilesdir) $(DESTDIR)$(sysconfdir)/raftd $(DESTDIR)$(docdir)
	$(INSTALL) -m 0755 $(INSTALL_BINS) $(DESTDIR)$(bindir)/
	@for u in $(INSTALL_UNITS); do \
	  echo "install $$u -> $(DESTDIR)$(systemdunitdir)/"; \
	  $(unit_rewrite) $$u > $(DESTDIR)$(systemdunitdir)/$${u##*/}.tmp && \
	  chmod 0644 $(DESTDIR)$(systemdunitdir)/$${u##*/}.tmp && \
	  mv -f $(DESTDIR)$(systemdunitdir)/$${u##*/}.tmp $(DESTDIR)$(systemdunitdir)/$${u##*/} || exit 1; \
	done
	$(INSTALL) -m 0644 systemd/raftd.sysusers $(DESTDIR)$(sysusersdir)/raftd.conf
	$(INSTALL) -m 0644 systemd/raftd.tmpfiles $(DESTDIR)$(tmpfilesdir)/raftd.conf
	@# The Prometheus alert rules are an example to copy into Prometheus's rule_files, like
	@# the example configuration: they go with it, not among the systemd units.
	$(INSTALL) -m 0644 $(INSTALL_DOCS) systemd/raftd.toml systemd/raftd-alerts.yml $(DESTDIR)$(docdir)/
	@# An operator's configuration is never overwritten; the pristine example stays in docdir.
	@if [ -e $(DESTDIR)$(sysconfdir)/raftd/raftd.toml ]; then \
	  echo "keeping existing $(DESTDIR)$(sysconfdir)/raftd/raftd.toml"; \
	else \
	  echo "install systemd/raftd.toml -> $(DESTDIR)$(sysconfdir)/raftd/raftd.toml"; \
	  $(INSTALL) -m 0644 systemd/raftd.toml $(DESTDIR)$(sysconfdir)/raftd/raftd.toml; \
	fi
	$(if $(CLIENT_HEADERS),$(INSTALL) -d $(DESTDIR)$(includedir)/raftd $(DESTDIR)$(libdir))
	$(if $(CLIENT_HEADERS),$(INSTALL) -m 0644 $(CLIENT_HEADERS) $(DESTDIR)$(includedir)/raftd/)
	$(if $(CLIENT_HEADERS),$(INSTALL) -m 0644 $(CLIENT_LIB) $(DESTDIR)$(libdir)/)

# Removes what `install` put there. The configuration goes only while it is byte-for-byte
# the shipped example; an edited one stays, and so do the data and the raftd user.
uninstall:
	rm -f $(addprefix $(DESTDIR)$(bindir)/,raftd raftctl)
	rm -f $(addprefix $(DESTDIR)$(systemdunitdir)/,$(notdir $(INSTALL_UNITS)))
	rm -f $(DESTDIR)$(sysusersdir)/raftd.conf $(DESTDIR)$(tmpfilesdir)/raftd.conf
	rm -rf $(DESTDIR)$(docdir) $(DESTDIR)$(includedir)/raftd
	rm -f $(DESTDIR)$(libdir)/libraftd-client.a
	@cfg=$(DESTDIR)$(sysconfdir)/raftd/raftd.toml; \
	if [ -f $$cfg ] && cmp -s $$cfg systemd/raftd.toml; then rm -f $$cfg; \
	elif [ -f $$cfg ]; then echo "keeping modified $$cfg"; fi; \
	rmdir $(DESTDIR)$(sysconfdir)/raftd 2>/dev/null || true

# A Debian package from the same install tree: build/deb/raftd_<version>_<arch>.deb.
# Depends is computed from the libraries the binaries link (the Debian packages that own
# them, at least the versions built against), so `apt install ./raftd_*.deb` pulls exactly
# the runtime libraries. Control file and maintainer scripts: systemd/deb/.
RAFTD_VERSION := $(shell sed -n 's/.*kRaftdVersion = "\([^"]*\)".*/\1/p' daemon/cli.h)
DEB_ARCH := $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEB_DIR ?= build/deb
DEB_ROOT = $(abspath $(DEB_DIR))/root
DEB_FILE = $(DEB_DIR)/raftd_$(RAFTD_VERSION)_$(DEB_ARCH).deb
deb: $$(INSTALL_BINS)
	@rm -rf $(DEB_ROOT) && mkdir -p $(DEB_ROOT)
	@# A fresh make for the staging install: the tree is ours, the jobserver is not needed.
	@env -u MAKEFLAGS -u MFLAGS $(MAKE) install DESTDIR=$(DEB_ROOT) PREFIX=/usr sysconfdir=/etc >/dev/null
	@# Debug info stays in build/release; the package ships stripped programs.
	@strip --strip-unneeded $(addprefix $(DEB_ROOT)/usr/bin/,$(notdir $(INSTALL_BINS)))
	@systemd/deb/make-control $(DEB_ROOT) $(RAFTD_VERSION) $(DEB_ARCH) $(INSTALL_BINS)
	@dpkg-deb --root-owner-group -Zxz --build $(DEB_ROOT) $(DEB_FILE) >/dev/null
	@echo "built $(DEB_FILE)"

# ---- the Python client: make install-python / uninstall-python -------------------------
# Debian-style: the raftd_client package under $(pythondir) (Debian's python3 searches
# /usr/lib/python3/dist-packages and /usr/local/lib/python3.X/dist-packages), its runtime
# dependency being Debian's python3-msgpack. Separate from `install` so the raftd package
# does not depend on Python. `pip install clients/python` is the other way (its README).
PY_VERSION = $(shell /usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
pythondir ?= $(if $(filter /usr,$(PREFIX)),$(PREFIX)/lib/python3/dist-packages,$(PREFIX)/lib/python$(PY_VERSION)/dist-packages)
PY_CLIENT_FILES = $(wildcard clients/python/raftd_client/*.py)
.PHONY: install-python uninstall-python
install-python:
	$(INSTALL) -d $(DESTDIR)$(pythondir)/raftd_client $(DESTDIR)$(docdir)/examples
	$(INSTALL) -m 0644 $(PY_CLIENT_FILES) $(DESTDIR)$(pythondir)/raftd_client/
	$(INSTALL) -m 0755 clients/examples/kv/kv.py $(DESTDIR)$(docdir)/examples/kv.py
	@/usr/bin/python3 -m compileall -q $(DESTDIR)$(pythondir)/raftd_client >/dev/null 2>&1 || true
uninstall-python:
	rm -rf $(DESTDIR)$(pythondir)/raftd_client $(DESTDIR)$(docdir)/examples/kv.py
	-rmdir $(DESTDIR)$(docdir)/examples $(DESTDIR)$(docdir) 2>/dev/null

# ---- ops: raftbench and the benchmarks (docs/performance.md) -----------------------------
# raftbench is clients/bench/raftbench_main.cpp plus header-only helpers, so nothing of it
# lands in the clients library. It speaks the public protocol through the codec (libcodec).
BINS += $(B)/bin/raftbench
all: $(B)/bin/raftbench
$(B)/bin/raftbench: $(B)/obj/clients/bench/raftbench_main.o $(B)/lib/libcodec.a $(B)/lib/libraft.a
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $(filter %.o,$^) $(B)/lib/libcodec.a $(B)/lib/libraft.a $(PKG_LIBS)
-include $(B)/obj/clients/bench/raftbench_main.d

.PHONY: bench bench-etcd bench-deps bench-restart
# Benchmark-only tools, installed on demand rather than by `make deps`: gnuplot draws the
# chart; etcd-server and wrk are the comparison system and its load generator.
BENCH_PKGS := gnuplot-nox etcd-server wrk
bench-deps:
	@env -u MAKEFLAGS -u MFLAGS $(MAKE) deps DEPS_PKGS="$(BENCH_PKGS)" DEPS_TEST_PKGS=
# The standard matrix against clusters it starts itself; build/bench/results.json + PNG.
bench: bench-deps build/release/bin/raftd build/release/bin/raftbench build/release/bin/wal_bench \
       build/release/bin/raftctl
	@tests/bench/run.sh
	@tests/bench/restart.sh
# The same 256-byte workload against a 3-member etcd and a 3-node raftd, alternated.
bench-etcd: bench-deps build/release/bin/raftd build/release/bin/raftbench
	@tests/bench/etcd.sh
# Peer TLS on against off: two 3-node clusters alternated (docs/performance.md, "Peer TLS").
.PHONY: bench-tls
bench-tls: build/release/bin/raftd build/release/bin/raftbench
	@tests/bench/tls.sh
# Memory and time to ready after a cold restart with a 1 GiB and a 4 GiB log, next to a cold
# `cat` of the same segments (RESTART_SIZES_MB; build/bench/restart.json).
bench-restart: build/release/bin/raftd build/release/bin/raftbench build/release/bin/raftctl
	@tests/bench/restart.sh

# ---- raft: soak -----------------------------------------------------------------------------
# `make test` runs 300 simulated seeds (100 under ASan) inside raft_test; `make soak-raft`
# runs many more in release: RAFT_SIM_SEEDS=N (default 20000), RAFT_SIM_TICKS per seed.
.PHONY: soak soak-raft
soak: soak-raft
soak-raft:
	@$(MAKE) VARIANT=release build/release/tests/raft_test
	RAFT_SIM_SEEDS=$${RAFT_SIM_SEEDS:-20000} build/release/tests/raft_test -tc='sim_*' --duration=true

# ---- daemon: the pipeline simulation soak -------------------------------------------------
# The same simulation with every node running the daemon's ReadyPipeline over a storage model
# that loses unsynced writes at a power loss (docs/raft.md, "Pipeline simulation"). `make
# test` runs 300 seeds (100 under ASan) inside daemon_test; `make soak-pipeline` runs
# PIPELINE_SIM_SEEDS (default 20000) in release, PIPELINE_SIM_TICKS fault ticks per seed.
.PHONY: soak-pipeline
soak: soak-pipeline
soak-pipeline:
	@$(MAKE) VARIANT=release build/release/tests/daemon_test
	PIPELINE_SIM_SEEDS=$${PIPELINE_SIM_SEEDS:-20000} build/release/tests/daemon_test -tc='pipeline_sim_*' --duration=true

# wal_fiu_probe runs under fiu-run in tests/scripts/wal_fiu.sh (libfiu, DEPS_TEST_PKGS).
BINS += $(B)/tests/wal_fiu_probe
all: $(B)/tests/wal_fiu_probe
$(B)/tests/wal_fiu_probe: $(B)/obj/wal/testing/fiu_probe_main.o $(LIBS)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBS) $(PKG_LIBS) -lfiu
-include $(B)/obj/wal/testing/fiu_probe_main.d

# WAL micro-benchmark: group-commit throughput against a raw write+fdatasync loop of the same
# bytes, and recovery time. Not part of make test. BENCH_WAL_ARGS adds flags (e.g. --json).
BINS += $(B)/bin/wal_bench
all: $(B)/bin/wal_bench
$(B)/bin/wal_bench: $(B)/obj/wal/bench_main.o $(LIBS)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBS) $(PKG_LIBS)
-include $(B)/obj/wal/bench_main.d

.PHONY: bench-wal
# (make bench runs wal_bench itself, with a shorter matrix, inside tests/bench/run.sh.)
bench-wal:
	@$(MAKE) VARIANT=release build/release/bin/wal_bench
	build/release/bin/wal_bench --recovery-mb 1024 $(BENCH_WAL_ARGS)

# ---- daemon: make run (local three-node demo cluster) -----------------------------------
# Installs what is missing, builds raftd (and raftctl when the tree has it), then runs
# daemon/demo/run.sh in the foreground: three nodes from daemon/demo/node{1,2,3}.toml with
# data under run/; Ctrl-C stops them.
.PHONY: run
run: deps
	@$(MAKE) VARIANT=release build/release/bin/raftd $(filter %/raftctl,$(BINS))
	@daemon/demo/run.sh

# ---- peer TLS: make certs (demo CA and node certificates) --------------------------------
# A CA and certificates for nodes 1-3 of the demo cluster under run/certs, made by
# tools/peer-certs.sh with the openssl command line (docs/operations.md, section 11). Kept
# when present; delete run/certs to start over.
.PHONY: certs
CERTS_DIR ?= run/certs
CERTS_CLUSTER ?= demo
certs:
	@tools/peer-certs.sh ca $(CERTS_DIR)
	@for i in 1 2 3; do [ -f $(CERTS_DIR)/node-$$i.pem ] || \
	  tools/peer-certs.sh node $(CERTS_DIR) $(CERTS_CLUSTER) $$i; done
	@tools/peer-certs.sh crl $(CERTS_DIR)
	@echo "certs: $(CERTS_DIR)/{ca,node-1,node-2,node-3}.pem, crl.pem (cluster $(CERTS_CLUSTER))"

# ---- clients/go, kv-go and the client conformance drivers --------------------------------
# Go builds offline in GOPATH mode: the package `raftd` is clients/go (linked into
# build/gopath), its one dependency is Debian's msgpack source tree under /usr/share/gocode
# (golang-github-vmihailenco-msgpack.v5-dev, from `make deps`). Module mode cannot be used
# offline here: Debian's msgpack go.mod requires a testify version that no local module has.
# The Go programs and the C++ conformance driver are release-tree only (tests/clients).
GO ?= go
GO_ENV = GO111MODULE=off GOPROXY=off GOFLAGS= GOPATH=$(abspath build/gopath):/usr/share/gocode \
         GOCACHE=$(abspath build/gocache)
GO_SRCS = $(wildcard clients/go/*.go)
GO_LINK := build/gopath/src/raftd
ifeq ($(VARIANT),release)
all: build/release/bin/kv-go build/release/tests/client_driver_go build/release/tests/client_driver_cpp
endif
$(GO_LINK):
	@mkdir -p $(@D)
	@ln -sfn ../../../clients/go $@
build/release/bin/kv-go: $(GO_SRCS) $(wildcard clients/examples/kv-go/*.go) | $(GO_LINK)
	@mkdir -p $(@D)
	$(GO_ENV) $(GO) build -o $@ ./clients/examples/kv-go
build/release/tests/client_driver_go: $(GO_SRCS) $(wildcard tests/clients/driver-go/*.go) | $(GO_LINK)
	@mkdir -p $(@D)
	$(GO_ENV) $(GO) build -o $@ ./tests/clients/driver-go
build/release/tests/client_driver_cpp: build/release/obj/tests/clients/driver_cpp.o \
                                       build/release/lib/libclients.a build/release/lib/libcodec.a \
                                       build/release/lib/libraft.a
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $^ -lpthread
-include build/release/obj/tests/clients/driver_cpp.d

# go vet over every Go package of the tree, then the client's unit tests under the race detector
# (tests/scripts/go_client.sh runs this in `make test`).
.PHONY: go-test
go-test: | $(GO_LINK)
	$(GO_ENV) $(GO) vet raftd ./clients/examples/kv-go ./tests/clients/driver-go
	$(GO_ENV) $(GO) test -race -count=1 raftd

# Proposals/s of each client next to raftbench, 64 in flight on one connection, 256 B, on a
# 3-node cluster (docs/performance.md, "Clients").
.PHONY: bench-clients
bench-clients: build/release/bin/raftd build/release/bin/raftbench build/release/tests/client_driver_go \
               build/release/tests/client_driver_cpp
	/usr/bin/python3 tests/clients/conformance.py --bench --seconds $${BENCH_SECONDS:-5}
