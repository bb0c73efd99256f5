// Certificates for the peer TLS suites (test code): a CA and node certificates made by
// tools/peer-certs.sh in a scratch directory (the suites run from the repository root).
#pragma once

#include <doctest/doctest.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "daemon/testing/util.h"
#include "daemon/tls.h"

namespace raftd::daemon::testing {

// Runs tools/peer-certs.sh ARGS, under faketime -f FAKETIME when given ("-3d", "+3d").
inline void certs(const std::string& args, const std::string& faketime = "") {
    std::string cmd = (faketime.empty() ? "" : "faketime -f '" + faketime + "' ") +
                      "bash tools/peer-certs.sh " + args;
    REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, cmd);
}

// A CA in DIR/pki with certificates node-1 and node-2 of cluster "c".
struct Pki {
    TempDir tmp;
    std::string dir = tmp.file("pki");
    std::string other = tmp.file("other");
    Pki() {
        certs("ca " + dir);
        certs("node " + dir + " c 1");
        certs("node " + dir + " c 2");
    }
    // NAME's certificate and key from CA_DIR (default: ours), trusting our CA.
    TlsFiles files(const std::string& name, const std::string& ca_dir = "") const {
        const std::string& d = ca_dir.empty() ? dir : ca_dir;
        return TlsFiles{d + "/" + name + ".pem", d + "/" + name + ".key", dir + "/ca.pem", ""};
    }
    // A context for `f`, without the check that it names a particular node.
    std::shared_ptr<TlsContext> ctx(const TlsFiles& f) const {
        auto c = TlsContext::load(f, "");
        REQUIRE_MESSAGE(c.is_ok(), c.status().message());
        return std::move(c).value();
    }
};

}  // namespace raftd::daemon::testing
