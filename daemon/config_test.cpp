#include "daemon/config.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "daemon/cli.h"
#include "daemon/testing/util.h"

using namespace raftd;
using namespace raftd::daemon;

namespace {

Status load(std::string_view text, Config& c) {
    return apply_toml(text, "x.toml", c);
}

std::string load_error(std::string_view text) {
    Config c = default_config();
    Status st = load(text, c);
    REQUIRE_FALSE(st.is_ok());
    return st.message();
}

Result<Invocation> run_cli(std::vector<std::string> args) {
    std::vector<const char*> argv{"raftd"};
    for (auto& a : args)
        argv.push_back(a.c_str());
    return parse_command_line(static_cast<int>(argv.size()), argv.data());
}

struct TempFile {
    testing::TempDir dir;
    std::string path = dir.file("raftd.toml");
    explicit TempFile(std::string_view text) { testing::write_file(path, text); }
};

}  // namespace

TEST_CASE("embedded_defaults_are_a_valid_single_node_cluster") {
    Config c = default_config();
    CHECK(validate(c).is_ok());
    CHECK(c.node_id == 1);
    CHECK(c.data_dir == "./raftd-data");
    CHECK(c.socket == "./raftd.sock");
    CHECK(c.socket_mode == 0660);
    CHECK(c.max_frame == 16u << 20);
    CHECK(c.wal_segment_size == 64u << 20);
    auto members = c.bootstrap_members();
    REQUIRE(members.size() == 1);
    CHECK(members[0].id == 1);
    CHECK(members[0].addr == c.listen);
}

TEST_CASE("every_option_round_trips_through_its_rendered_value") {
    Config c = default_config();
    for (const auto& o : options()) {
        CAPTURE(o.name);
        Config d = default_config();
        std::string line = std::string(o.name) + " = " + render_value(c, o) + "\n";
        CHECK(load(line, d).is_ok());
        CHECK(render_value(d, o) == render_value(c, o));
        CHECK(!o.help.empty());
        CHECK(!o.doc.empty());
    }
}

TEST_CASE("unknown_key_names_file_line_key_and_a_near_match") {
    CHECK(load_error("node_id = 2\nnod_id = 3\n") ==
          "x.toml:2: unknown key 'nod_id' (did you mean 'node_id'?)");
    CHECK(load_error("flux_capacitor = 1\n") == "x.toml:1: unknown key 'flux_capacitor'");
}

TEST_CASE("sections_are_refused_because_the_file_is_flat") {
    CHECK(load_error("\n[raft]\ntick_ms = 5\n") == "x.toml:2: unknown section [raft]");
}

TEST_CASE("value_of_the_wrong_type_is_refused_with_its_line") {
    CHECK(load_error("node_id = \"two\"") ==
          "x.toml:1: key 'node_id': expected an integer, got a string");
    CHECK(load_error("pre_vote = 1") ==
          "x.toml:1: key 'pre_vote': expected true or false, got an integer");
    CHECK(load_error("initial_cluster = \"1=a:1\"") ==
          "x.toml:1: key 'initial_cluster': expected an array of \"id=host:port\" strings, "
          "got a string");
}

TEST_CASE("values_out_of_bounds_are_refused_with_the_bound") {
    CHECK(load_error("max_frame = 12") ==
          "x.toml:1: key 'max_frame': must be at least 64KiB (got 12)");
    CHECK(load_error("node_id = 0") == "x.toml:1: key 'node_id': must be at least 1 (got 0)");
    CHECK(load_error("tick_ms = -5") == "x.toml:1: key 'tick_ms': must not be negative (got -5)");
    CHECK(load_error("socket_mode = 0o1777") ==
          "x.toml:1: key 'socket_mode': must be at most 0777 (got 01777)");
    CHECK(load_error("log_level = \"loud\"") ==
          "x.toml:1: key 'log_level': must be one of trace|debug|info|warn|error|critical|off "
          "(got \"loud\")");
}

TEST_CASE("toml_syntax_errors_name_file_line_and_column") {
    std::string e = load_error("node_id = 1\ncluster = \n");
    CHECK(e.rfind("x.toml:2:", 0) == 0);
}

TEST_CASE("a_refused_file_changes_nothing_when_the_caller_keeps_its_copy") {
    Config c = default_config();
    Config attempt = c;
    CHECK_FALSE(load("node_id = 7\nmax_frame = 1\n", attempt).is_ok());
    CHECK(c.node_id == 1);
}

TEST_CASE("sizes_accept_integers_and_binary_units") {
    Config c = default_config();
    REQUIRE(load("max_frame = \"32MiB\"\nwal_segment_size = 2097152\nmax_entry = \"512KiB\"", c)
                .is_ok());
    CHECK(c.max_frame == 32u << 20);
    CHECK(c.wal_segment_size == 2u << 20);
    CHECK(c.max_entry == 512u << 10);
    CHECK(parse_bytes("1GiB").value() == 1ull << 30);
    CHECK(parse_bytes("7").value() == 7);
    CHECK_FALSE(parse_bytes("12XB").is_ok());
    CHECK_FALSE(parse_bytes("MiB").is_ok());
    CHECK_FALSE(parse_bytes("99999999999999999999GiB").is_ok());
    CHECK(format_bytes(3u << 20) == "3MiB");
    CHECK(format_bytes(1000) == "1000");
}

TEST_CASE("socket_mode_reads_toml_octal_and_octal_strings") {
    Config c = default_config();
    REQUIRE(load("socket_mode = 0o600", c).is_ok());
    CHECK(c.socket_mode == 0600);
    REQUIRE(load("socket_mode = \"0640\"", c).is_ok());
    CHECK(c.socket_mode == 0640);
}

TEST_CASE("addresses_are_host_port_with_bracketed_ipv6") {
    CHECK(parse_host_port("10.0.0.1:7000").value().port == 7000);
    CHECK(parse_host_port("[::1]:7001").value().host == "::1");
    CHECK(parse_host_port("node-a.example:1").value().host == "node-a.example");
    CHECK_FALSE(parse_host_port("10.0.0.1").is_ok());
    CHECK_FALSE(parse_host_port("10.0.0.1:0").is_ok());
    CHECK_FALSE(parse_host_port("::1:7000").is_ok());
    CHECK_FALSE(parse_host_port(":7000").is_ok());
    CHECK(load_error("listen = \"nowhere\"") ==
          "x.toml:1: key 'listen': address \"nowhere\": expected host:port");
}

TEST_CASE("initial_cluster_must_list_this_node_once") {
    Config c = default_config();
    REQUIRE(load("node_id = 2\ninitial_cluster = [\"1=a:1\", \"2=b:2\", \"3=c:3\"]", c).is_ok());
    CHECK(validate(c).is_ok());
    CHECK(c.bootstrap_members().size() == 3);
    CHECK(c.initial_cluster[1] == raft::Member{2, "b:2"});

    c.node_id = 4;
    CHECK(validate(c).message() == "initial_cluster does not list this node (node_id 4)");
    c.join = true;  // a joining node is not one of the initial members
    CHECK(validate(c).is_ok());

    Config d = default_config();
    REQUIRE(load("initial_cluster = [\"1=a:1\", \"1=b:2\"]", d).is_ok());
    CHECK(validate(d).message() == "initial_cluster: node id 1 is listed twice");
    CHECK(load_error("initial_cluster = [\"x=a:1\"]") ==
          "x.toml:1: key 'initial_cluster': member \"x=a:1\": the id must be a positive integer");
}

TEST_CASE("cross_option_rules_are_enforced") {
    Config c = default_config();
    c.heartbeat_ticks = c.election_ticks;
    {
        Config l = default_config();
        l.lease_read = true;
        l.check_quorum = false;
        CHECK(validate(l).message().rfind("lease_read needs check_quorum", 0) == 0);
    }
    CHECK(validate(c).message() == "heartbeat_ticks (10) must be smaller than election_ticks (10)");
    c = default_config();
    c.max_entry = c.max_frame;
    CHECK(validate(c).message() == "max_entry (16MiB) must be at most max_frame - 4KiB (16380KiB)");
    c = default_config();
    c.cluster = "has space";
    CHECK_FALSE(validate(c).is_ok());
    c = default_config();
    c.socket = std::string(120, 's');
    CHECK_FALSE(validate(c).is_ok());
}

TEST_CASE("flags_override_the_file_which_overrides_defaults") {
    TempFile f("node_id = 2\ndata_dir = \"/srv/a\"\ninitial_cluster = [\"1=a:1\", \"2=b:2\"]\n");
    auto inv = run_cli({"--config", f.path, "--node-id", "1", "--max-frame=32MiB"});
    REQUIRE_MESSAGE(inv.is_ok(), inv.status().to_string());
    CHECK(inv->action == Invocation::Action::kRun);
    CHECK(inv->config.node_id == 1);
    CHECK(inv->config.data_dir == "/srv/a");
    CHECK(inv->config.max_frame == 32u << 20);
    CHECK(inv->config.socket == "./raftd.sock");
}

TEST_CASE("boolean_and_list_flags") {
    auto inv = run_cli({"--no-pre-vote", "--join", "--peers", "1=a:1,2=b:2", "--node-id", "2",
                        "--allowed-uids", "1000,1001", "--allowed-gids", "50,51", "--lease-read",
                        "--request-timeout-ms", "250"});
    REQUIRE_MESSAGE(inv.is_ok(), inv.status().to_string());
    CHECK_FALSE(inv->config.pre_vote);
    CHECK(inv->config.check_quorum);
    CHECK(inv->config.join);
    REQUIRE(inv->config.initial_cluster.size() == 2);
    CHECK(inv->config.initial_cluster[1].addr == "b:2");
    CHECK(inv->config.allowed_uids == std::vector<uint32_t>{1000, 1001});
    CHECK(inv->config.allowed_gids == std::vector<uint32_t>{50, 51});
    CHECK(inv->config.lease_read);
    CHECK(inv->config.request_timeout_ms == 250);

    // A repeated list flag accumulates rather than keeping only the last one.
    auto repeated = run_cli({"--initial-cluster", "1=a:1", "--initial-cluster", "2=b:2"});
    REQUIRE_MESSAGE(repeated.is_ok(), repeated.status().to_string());
    CHECK(repeated->config.initial_cluster.size() == 2);
}

TEST_CASE("bad_flags_are_one_line_errors") {
    auto a = run_cli({"--max-frame", "1"});
    REQUIRE_FALSE(a.is_ok());
    CHECK(a.status().message() == "--max-frame: must be at least 64KiB (got 1)");
    auto b = run_cli({"--no-such-flag"});
    REQUIRE_FALSE(b.is_ok());
    CHECK(b.status().message().find("--no-such-flag") != std::string::npos);
    auto c = run_cli({"--config", "/nonexistent/raftd.toml"});
    REQUIRE_FALSE(c.is_ok());
    CHECK(c.status().message().rfind("/nonexistent/raftd.toml: cannot read config file", 0) == 0);
    TempFile f("node_id = 1\nbogus = 2\n");
    auto d = run_cli({"--config", f.path});
    REQUIRE_FALSE(d.is_ok());
    CHECK(d.status().message() == f.path + ":2: unknown key 'bogus'");
}

TEST_CASE("a_removed_option_is_ignored_with_a_warning_not_refused") {
    // A file written for an older raftd must not stop a node after an upgrade.
    Config c = default_config();
    REQUIRE(load("node_id = 1\npersist_on_loop = false\nleader_async_append = false\n", c));
    REQUIRE(c.warnings.size() == 2);
    auto warned = [&c](std::string_view prefix) {
        for (const auto& w : c.warnings)
            if (w.rfind(prefix, 0) == 0) return true;
        return false;
    };
    CHECK(warned("x.toml:2: option 'persist_on_loop' was removed and is ignored: a batch is"));
    CHECK(warned("x.toml:3: option 'leader_async_append' was removed and is ignored: "));
    // Any value: the key has no meaning left to check it against.
    Config d = default_config();
    REQUIRE(load("persist_on_loop = \"maybe\"\n", d));
    CHECK(d.warnings.size() == 1);

    TempFile f("leader_async_append = true\n");
    auto inv = run_cli({"--config", f.path, "--no-persist-on-loop"});
    REQUIRE_MESSAGE(inv.is_ok(), inv.status().to_string());
    REQUIRE(inv->config.warnings.size() == 2);
    CHECK(inv->config.warnings[0].find("'leader_async_append' was removed") != std::string::npos);
    CHECK(inv->config.warnings[1].rfind("--persist-on-loop: option was removed", 0) == 0);

    // Hidden from --help and the effective config; listed in the reference.
    auto help = run_cli({"--help"});
    REQUIRE(help.is_ok());
    CHECK(help->output.find("persist-on-loop") == std::string::npos);
    CHECK(render_effective_toml(inv->config).find("persist_on_loop") == std::string::npos);
    CHECK(render_reference_markdown().find("- `persist_on_loop`: ") != std::string::npos);
    CHECK(default_config().warnings.empty());
}

TEST_CASE("snapshot_keep_is_removed_because_one_snapshot_file_is_all_raftd_keeps") {
    // It never had an effect: the store deletes the previous snapshot file once a newer one
    // is current. A file that sets it still loads.
    Config c = default_config();
    REQUIRE(load("snapshot_keep = 5\n", c));
    REQUIRE(c.warnings.size() == 1);
    CHECK(c.warnings[0].find("'snapshot_keep' was removed and is ignored: the data directory "
                             "holds one snapshot file") != std::string::npos);
    CHECK(find_option("snapshot_keep") == nullptr);
}

TEST_CASE("help_lists_every_option_with_its_default") {
    auto inv = run_cli({"--help"});
    REQUIRE(inv.is_ok());
    CHECK(inv->action == Invocation::Action::kPrint);
    Config d = default_config();
    for (const auto& o : options()) {
        std::string flag = "--" + std::string(o.name);
        for (char& ch : flag)
            if (ch == '_') ch = '-';
        CAPTURE(flag);
        CHECK(inv->output.find(flag) != std::string::npos);
        std::string def = render_flag_value(d, o);
        if (!def.empty()) CHECK(inv->output.find(def) != std::string::npos);
    }
    CHECK(inv->output.find("--peers") != std::string::npos);
}

TEST_CASE("example_config_lists_every_key_and_loads_cleanly") {
    std::string ex = render_example_toml();
    Config c = default_config();
    Status st = apply_toml(ex, "raftd.toml", c);
    REQUIRE_MESSAGE(st.is_ok(), st.to_string());
    CHECK(validate(c).is_ok());
    CHECK(c.data_dir == "/var/lib/raftd");
    CHECK(c.socket == "/run/raftd/raftd.sock");
    for (const auto& o : options()) {
        CAPTURE(o.name);
        bool set = ex.find("\n" + std::string(o.name) + " = ") != std::string::npos;
        bool commented = ex.find("\n# " + std::string(o.name) + " = ") != std::string::npos;
        CHECK(set != commented);
    }
}

TEST_CASE("reference_and_effective_config_cover_every_key") {
    std::string ref = render_reference_markdown();
    Config c = default_config();
    c.node_id = 3;
    c.initial_cluster = {{1, "a:1"}, {3, "c:3"}};
    std::string eff = render_effective_toml(c);
    Config back = default_config();
    REQUIRE(apply_toml(eff, "eff.toml", back).is_ok());
    for (const auto& o : options()) {
        CAPTURE(o.name);
        CHECK(ref.find("### `" + std::string(o.name) + "`") != std::string::npos);
        CHECK(render_value(back, o) == render_value(c, o));
    }
}
