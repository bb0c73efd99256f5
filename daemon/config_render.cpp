// Writing the option table back out: values as TOML and flag text, the reference document
// and the example config. Output is deterministic so the committed copies can be diffed.
#include <sstream>

#include "daemon/config.h"

namespace raftd::daemon {
namespace {

std::string toml_quote(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

std::string octal(uint64_t v) {
    std::ostringstream s;
    s << std::oct << v;
    return s.str();
}

template <typename T>
const T& field_ref(const Config& cfg, const OptionSpec& o) {
    return cfg.*std::get<T Config::*>(o.field);
}

std::string flag_name(std::string_view name) {
    std::string f = "--" + std::string(name);
    for (char& c : f)
        if (c == '_') c = '-';
    return f;
}

// Breaks `text` into lines of at most `width` columns, each starting with `prefix`.
std::string wrap(std::string_view text, std::string_view prefix, size_t width) {
    std::string out, line(prefix);
    size_t pos = 0;
    while (pos < text.size()) {
        size_t sp = text.find(' ', pos);
        std::string_view word = text.substr(pos, sp == std::string_view::npos ? sp : sp - pos);
        if (line.size() > prefix.size() && line.size() + 1 + word.size() > width) {
            out += line + "\n";
            line = prefix;
        }
        if (line.size() > prefix.size()) line += ' ';
        line += word;
        if (sp == std::string_view::npos) break;
        pos = sp + 1;
    }
    return out + line + "\n";
}

std::string type_text(const OptionSpec& o) {
    auto range = [&](auto fmt) {
        if (o.max == UINT64_MAX) return fmt(o.min) + " or more";
        return fmt(o.min) + " to " + fmt(o.max);
    };
    auto num = [](uint64_t v) { return std::to_string(v); };
    switch (o.kind) {
        case Kind::kBool:
            return "boolean";
        case Kind::kUint:
            return "integer, " + range(num);
        case Kind::kBytes:
            return "size, " + range(format_bytes);
        case Kind::kMode:
            return "octal mode, at most 0" + octal(o.max);
        case Kind::kString:
            return "string";
        case Kind::kEnum: {
            std::string t = "one of ";
            std::string_view rest = o.choices;
            while (true) {
                size_t bar = rest.find('|');
                t += "`" + std::string(rest.substr(0, bar)) + "`";
                if (bar == std::string_view::npos) break;
                t += ", ";
                rest.remove_prefix(bar + 1);
            }
            return t;
        }
        case Kind::kAddr:
            return o.def == "\"\"" ? "host:port, or empty" : "host:port";
        case Kind::kMembers:
            return "list of \"id=host:port\"";
        case Kind::kIds:
            return "list of numeric ids";
    }
    return "";
}

std::string flags_text(const OptionSpec& o) {
    std::string f = "`" + flag_name(o.name) + "`";
    if (o.kind == Kind::kBool) f += ", `--no-" + flag_name(o.name).substr(2) + "`";
    if (!o.alias.empty()) f += ", `" + flag_name(o.alias) + "`";
    return f;
}

}  // namespace

std::string render_value(const Config& cfg, const OptionSpec& o) {
    switch (o.kind) {
        case Kind::kBool:
            return field_ref<bool>(cfg, o) ? "true" : "false";
        case Kind::kUint:
            return std::to_string(field_ref<uint64_t>(cfg, o));
        case Kind::kBytes: {
            std::string b = format_bytes(field_ref<uint64_t>(cfg, o));
            return b.back() == 'B' ? toml_quote(b) : b;
        }
        case Kind::kMode:
            return "0o" + octal(field_ref<uint32_t>(cfg, o));
        case Kind::kString:
        case Kind::kEnum:
        case Kind::kAddr:
            return toml_quote(field_ref<std::string>(cfg, o));
        case Kind::kMembers: {
            std::string out = "[";
            for (const auto& m : field_ref<std::vector<raft::Member>>(cfg, o)) {
                if (out.size() > 1) out += ", ";
                out += toml_quote(std::to_string(m.id) + "=" + m.addr);
            }
            return out + "]";
        }
        case Kind::kIds: {
            std::string out = "[";
            for (uint32_t u : field_ref<std::vector<uint32_t>>(cfg, o)) {
                if (out.size() > 1) out += ", ";
                out += std::to_string(u);
            }
            return out + "]";
        }
    }
    return "";
}

std::string render_flag_value(const Config& cfg, const OptionSpec& o) {
    switch (o.kind) {
        case Kind::kBytes:
            return format_bytes(field_ref<uint64_t>(cfg, o));
        case Kind::kMode:
            return "0" + octal(field_ref<uint32_t>(cfg, o));
        case Kind::kString:
        case Kind::kEnum:
        case Kind::kAddr:
            return field_ref<std::string>(cfg, o);
        case Kind::kMembers: {
            std::string out;
            for (const auto& m : field_ref<std::vector<raft::Member>>(cfg, o))
                out += (out.empty() ? "" : ",") + std::to_string(m.id) + "=" + m.addr;
            return out;
        }
        case Kind::kIds: {
            std::string out;
            for (uint32_t u : field_ref<std::vector<uint32_t>>(cfg, o))
                out += (out.empty() ? "" : ",") + std::to_string(u);
            return out;
        }
        default:
            return render_value(cfg, o);
    }
}

std::string render_reference_markdown() {
    const Config d = default_config();
    std::string out =
        "# Configuration\n"
        "\n"
        "<!-- Generated from the option table in daemon/config_table.cpp by\n"
        "     `raftd --print-config-reference`; run `make config-docs` after changing it. -->\n"
        "\n";
    out += wrap(
        "raftd takes its settings from three places, each overriding the one before: the "
        "built-in defaults, the TOML file named by `--config FILE`, and command-line flags. "
        "Every key is also a flag: `node_id` is `--node-id`. With no file and no flags raftd "
        "runs a single-node cluster in `./raftd-data` with its socket at `./raftd.sock`.",
        "", 92);
    out += "\n";
    out += wrap(
        "The file is flat: every key sits at the top level, without sections. An unknown key, "
        "a value of the wrong type or one out of range stops raftd before it starts, with one "
        "line naming the file, the line, the key and the reason:",
        "", 92);
    out += "\n    raftd: error: raftd.toml:7: key 'max_frame': must be at least 64KiB (got 12)\n\n";
    out += wrap(
        "A key or flag of an option raftd no longer has (see \"Removed options\" at the end) "
        "is not an error: it is ignored, and raftd logs a warning naming it when it starts "
        "(`--check-config` prints the warning too), so that a file written for an older "
        "raftd does not stop a node after an upgrade.",
        "", 92);
    out += "\n";
    out += wrap(
        "Sizes are integers (bytes) or strings with a binary unit: \"512KiB\", \"64MiB\", "
        "\"1GiB\". As flags, lists are comma-separated (`--initial-cluster "
        "1=10.0.0.1:7000,2=10.0.0.2:7000`) and booleans take no value (`--join`, "
        "`--no-pre-vote`). `raftd --print-config` prints the configuration that a file and "
        "flags add up to; `systemd/raftd.toml` is an example file with every key.",
        "", 92);
    std::string_view group;
    for (const auto& o : options()) {
        if (o.group != group) {
            group = o.group;
            out += "\n## " + std::string(group) + "\n";
        }
        out += "\n### `" + std::string(o.name) + "`\n\n";
        out += "| type | default | flags |\n|---|---|---|\n";
        out +=
            "| " + type_text(o) + " | `" + render_value(d, o) + "` | " + flags_text(o) + " |\n\n";
        out += wrap(o.doc, "", 92);
    }
    out += "\n## Removed options\n\n";
    out += wrap("Accepted and ignored with a warning:", "", 92);
    out += "\n";
    for (const auto& r : removed_options()) {
        // A list item whose continuation lines are indented under its text.
        std::string item =
            wrap("`" + std::string(r.name) + "`: " + std::string(r.why) + ".", "  ", 92);
        item[0] = '-';
        out += item;
    }
    return out;
}

std::string render_example_toml() {
    const Config d = default_config();
    std::string out =
        "# raftd example configuration, ready for the systemd unit (raftd.service).\n"
        "#\n";
    out += wrap(
        "Generated from raftd's option table (`raftd --print-example-config`); it lists "
        "every key raftd accepts. Uncommented keys are the ones to check on every machine; "
        "commented ones show the built-in default. Flags on the command line override this file. "
        "Sizes take a binary unit (\"64MiB\"). Reference: docs/configuration.md.",
        "# ", 92);
    std::string_view group;
    for (const auto& o : options()) {
        if (o.group != group) {
            group = o.group;
            std::string head = "# ---- " + std::string(group) + " ";
            out += "\n" + head + std::string(92 - head.size(), '-') + "\n";
        }
        out += "\n" + wrap(o.doc, "# ", 92);
        if (!o.example.empty())
            out += std::string(o.name) + " = " + std::string(o.example) + "\n";
        else
            out += "# " + std::string(o.name) + " = " + render_value(d, o) + "\n";
    }
    return out;
}

std::string render_effective_toml(const Config& cfg) {
    std::string out =
        "# Effective raftd configuration (defaults, then --config file, then flags).\n";
    std::string_view group;
    for (const auto& o : options()) {
        if (o.group != group) {
            group = o.group;
            out += "\n# " + std::string(group) + "\n";
        }
        out += std::string(o.name) + " = " + render_value(cfg, o) + "\n";
    }
    return out;
}

}  // namespace raftd::daemon
