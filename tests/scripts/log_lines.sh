#!/usr/bin/env bash
# docs/operations.md section 10 explains every log line raftd writes at warn, error or
# critical. fatal("why: " + detail) is the daemon's stop-on-error path; it logs
# "why: {}; stopping" at critical. This fails when a spdlog::warn/error/critical call (or a fatal("...") reason) in
# the daemon's sources has no row in that table, or a row names a line no source writes.
# Rows quote the format string exactly, placeholders included: | `peer {}: bad message: {}` |
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 - <<'PY'
import pathlib, re, sys

call = re.compile(r'\b(?:spdlog::(warn|error|critical)|(fatal))\(\s*((?:"(?:[^"\\]|\\.)*"\s*)+)(\+)?', re.S)
sources = {}
for d in ("daemon", "ipc", "wal", "raft"):
    for p in sorted(pathlib.Path(d).rglob("*.cpp")):
        if p.name.endswith("_test.cpp") or "testing" in p.parts:
            continue
        text = p.read_text()
        for m in call.finditer(text):
            # Adjacent literals concatenate, as in C++.
            fmt = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(3)))
            fmt = fmt.encode().decode("unicode_escape")
            if m.group(2):  # fatal("reason: " + detail) logs "reason: {detail}; stopping"
                fmt += ("{}" if m.group(4) else "") + "; stopping"
            line = text.count("\n", 0, m.start()) + 1
            sources.setdefault(fmt, f"{p}:{line} ({m.group(1) or 'critical, via fatal'})")

doc = pathlib.Path("docs/operations.md").read_text()
section = doc.split("## 10.", 1)[1] if "## 10." in doc else ""
documented = set(re.findall(r'^\|\s*`([^`]+)`\s*\|', section, re.M))

missing = sorted(set(sources) - documented)
stale = sorted(documented - set(sources))
for fmt in missing:
    print(f"undocumented log line: `{fmt}` at {sources[fmt]}: add a row to docs/operations.md section 10")
for fmt in stale:
    print(f"docs/operations.md section 10 lists `{fmt}`, which no source writes")
print(f"{len(sources)} warn/error/critical lines in the sources, {len(documented)} documented")
sys.exit(1 if missing or stale else 0)
PY
