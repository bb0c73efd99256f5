// enum_name: the printable name of an enum value, looked up in a table of {value, name} pairs
// that stands beside the enum's printer (role_name, code_name, record_check_name, ...).
//
// Owns: only the lookup, so each printer is its table and one call rather than a switch.
// Never: allocates; the names are string literals that live as long as the program.
// Thread rules: constexpr, any thread.
#pragma once

#include <cstddef>

namespace raftd {

template <class E>
struct EnumName {
    E value;
    const char* name;
};

// The name `table` gives `v`, or `otherwise` when the table lacks it (a value cast into the
// enum from bytes a newer or corrupt peer sent, or an enumerator added without a name).
template <class E, size_t N>
constexpr const char* enum_name(E v, const EnumName<E> (&table)[N], const char* otherwise) {
    for (const EnumName<E>& e : table)
        if (e.value == v) return e.name;
    return otherwise;
}

}  // namespace raftd
