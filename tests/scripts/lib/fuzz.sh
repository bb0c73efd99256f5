# Sourced by tests/scripts/fuzz_*.sh, from the repository root.
#   fuzz_setup build/fuzz/NAME  -> builds the libFuzzer target when missing (exit 77 without
#                                  clang++); $dir: a temporary directory, removed at exit,
#                                  with $dir/corpus for the seeds
#   fuzz_run NAME MAX_LEN       -> runs it FUZZ_SECONDS (default 20) on the corpus; a finding
#                                  is copied to build/fuzz/findings/ and exits 1
fuzz_setup() {
    fuzz=$1
    if [ ! -x "$fuzz" ]; then
        if ! command -v clang++ >/dev/null; then
            echo "clang++ is not installed (make deps installs it): cannot build the fuzzer"; exit 77
        fi
        make -s "$fuzz"
    fi
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
    mkdir -p "$dir/corpus"
}

fuzz_run() {
    local name=$1 max_len=$2 secs=${FUZZ_SECONDS:-20}
    "$fuzz" -max_total_time="$secs" -max_len="$max_len" -timeout=10 -rss_limit_mb=1024 \
        -artifact_prefix="$dir/" -print_final_stats=1 "$dir/corpus" 2>"$dir/log" || {
        tail -n 40 "$dir/log"
        mkdir -p build/fuzz/findings
        cp "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-* build/fuzz/findings/ 2>/dev/null || true
        echo "inputs saved in build/fuzz/findings/"; exit 1; }
    grep -E '^stat::number_of_executed_units|^Done' "$dir/log" || tail -n 3 "$dir/log"
    echo "$name: no findings in ${secs}s"
}
