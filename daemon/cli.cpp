// argv -> Invocation with CLI11. Every flag is read as text and handed to the same
// apply_text() the config table defines, so a flag and a TOML key can never disagree on what
// a value means or which values are allowed.
#include "daemon/cli.h"

#include <CLI/CLI.hpp>
#include <deque>

#include "raft/enum_name.h"

namespace raftd::daemon {
namespace {

std::string flag_of(std::string_view name) {
    std::string f(name);
    for (char& c : f)
        if (c == '_') c = '-';
    return f;
}

constexpr EnumName<Kind> kTypeLabels[] = {
    {Kind::kBool, ""},          {Kind::kUint, "INT"},
    {Kind::kBytes, "SIZE"},     {Kind::kMode, "MODE"},
    {Kind::kString, "TEXT"},    {Kind::kEnum, "LEVEL"},
    {Kind::kAddr, "HOST:PORT"}, {Kind::kMembers, "ID=HOST:PORT,..."},
    {Kind::kIds, "ID,..."},
};

const char* type_label(const OptionSpec& o) {
    return enum_name(o.kind, kTypeLabels, "");
}

// One slot per table option, holding the raw flag text until the file has been applied.
struct Slot {
    const OptionSpec* spec;
    std::string text;
    std::vector<std::string> items;  // list options may be repeated
    CLI::Option* opt = nullptr;
};

}  // namespace

Result<Invocation> parse_command_line(int argc, const char* const* argv) {
    const Config defaults = default_config();
    CLI::App app{
        "raftd: a sidecar consensus daemon. Applications connect over a Unix socket, propose "
        "entries and follow the commit stream; raftd orders, persists and replicates them.\n"
        "Settings come from built-in defaults, then --config FILE, then these flags.",
        "raftd"};
    app.get_formatter()->column_width(40);

    Invocation inv;
    bool print_reference = false, print_example = false, print_config = false, check = false;
    app.add_option("-c,--config", inv.config_path, "TOML configuration file")
        ->type_name("FILE")
        ->group("General");
    app.set_version_flag("--version", std::string("raftd ") + kRaftdVersion)->group("General");
    app.add_flag("--check-config", check, "Validate the configuration and exit")->group("General");
    app.add_flag("--print-config", print_config,
                 "Print the effective configuration as TOML and exit")
        ->group("General");
    app.add_flag("--print-config-reference", print_reference,
                 "Print docs/configuration.md (generated from the option table) and exit")
        ->group("General");
    app.add_flag("--print-example-config", print_example,
                 "Print the example config systemd/raftd.toml and exit")
        ->group("General");

    std::deque<Slot> slots;  // deque: CLI11 keeps references into the slots
    for (const auto& o : options()) {
        Slot& s = slots.emplace_back(Slot{&o, {}, {}, nullptr});
        std::string names = "--" + flag_of(o.name);
        if (!o.alias.empty()) names += ",--" + flag_of(o.alias);
        std::string help(o.help);
        if (o.kind == Kind::kBool) {
            names += ",!--no-" + flag_of(o.name);
            help += std::string(" (default: ") + (render_flag_value(defaults, o)) + ")";
            s.opt = app.add_flag(names, s.text, help);
        } else if (o.kind == Kind::kMembers || o.kind == Kind::kIds) {
            s.opt = app.add_option(names, s.items, help)->delimiter(',');
        } else {
            s.opt = app.add_option(names, s.text, help);
        }
        s.opt->group(std::string(o.group))
            ->multi_option_policy(o.kind == Kind::kMembers || o.kind == Kind::kIds
                                      ? CLI::MultiOptionPolicy::TakeAll
                                      : CLI::MultiOptionPolicy::TakeLast);
        if (o.kind != Kind::kBool) {
            s.opt->type_name(type_label(o));
            if (o.kind == Kind::kEnum) s.opt->type_name(std::string(o.choices));
            std::string def = render_flag_value(defaults, o);
            if (!def.empty()) s.opt->default_str(def);
        }
    }

    // Removed options still parse, hidden from --help, and only warn (config.h).
    std::deque<std::pair<const RemovedOption*, std::string>> removed;
    std::vector<CLI::Option*> removed_opts;
    for (const auto& r : removed_options()) {
        auto& slot = removed.emplace_back(&r, std::string());
        removed_opts.push_back(
            app.add_flag("--" + flag_of(r.name) + ",!--no-" + flag_of(r.name), slot.second, "")
                ->group(""));
    }

    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {  // --help, --version
        inv.action = Invocation::Action::kPrint;
        if (dynamic_cast<const CLI::CallForVersion*>(&e))
            inv.output = std::string("raftd ") + kRaftdVersion + "\n";
        else
            inv.output = app.help();
        return inv;
    } catch (const CLI::ParseError& e) {
        return Status::invalid_argument(e.what());
    }

    if (print_reference || print_example) {
        inv.action = Invocation::Action::kPrint;
        inv.output = print_reference ? render_reference_markdown() : render_example_toml();
        return inv;
    }

    inv.config = defaults;
    if (!inv.config_path.empty()) {
        if (Status st = apply_file(inv.config_path, inv.config); !st) return st;
    }
    for (const Slot& s : slots) {
        if (s.opt->count() == 0) continue;
        std::string text = s.text;
        if (!s.items.empty() || s.spec->kind == Kind::kMembers || s.spec->kind == Kind::kIds) {
            text.clear();
            for (const auto& item : s.items)
                text += (text.empty() ? "" : ",") + item;
        }
        std::string origin = "--" + flag_of(s.spec->name);
        if (Status st = apply_text(*s.spec, text, origin, inv.config); !st) return st;
    }
    for (size_t i = 0; i < removed.size(); ++i) {
        if (removed_opts[i]->count() == 0) continue;
        inv.config.warnings.push_back(
            "--" + flag_of(removed[i].first->name) +
            ": option was removed and is ignored: " + std::string(removed[i].first->why));
    }
    if (Status st = validate(inv.config); !st) return st;

    if (print_config) {
        inv.action = Invocation::Action::kPrint;
        inv.output = render_effective_toml(inv.config);
    } else if (check) {
        inv.action = Invocation::Action::kCheckConfig;
    }
    return inv;
}

}  // namespace raftd::daemon
