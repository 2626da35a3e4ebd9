#!/usr/bin/env bash
# The fuzz targets of ConvNet's parsers (see README.md in this folder).
#   fuzz.sh build                 build every target (libFuzzer + AddressSanitizer, debug, .build-fuzz/)
#   fuzz.sh replay                run the committed corpus and regression inputs through each target once (CI)
#   fuzz.sh campaign [RUNS] [T..] fuzz each target (or the named ones) for RUNS executions (default 1000000),
#                                 starting from the seeds and the corpus; crashes go to Regressions/T/,
#                                 the corpus is minimised into Corpus/T/ afterwards
#                                 (FUZZ_SECONDS=N also stops each target after N seconds; FUZZ_TIMEOUT=N allows
#                                 N seconds per input instead of 1, for a machine busy with other work)
#   fuzz.sh seeds                 regenerate the seed files (.build-fuzz/seeds/T/) with make-seeds.py
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
targets=(IDX CIFAR NPY NPZ Model PNG PNM Spec CSV Budget)
scratch="$here/.build-fuzz"
export SWIFT_BACKTRACE=enable=no   # else a false ASan report hides the crash (shared/FACTS.md)
# Swift's runtime keeps metadata caches for the life of the process: not leaks of ours.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}"

build() {
    # --sanitize=fuzzer instruments only this package's targets; -sanitize-coverage gives ConvNet's code (the
    # parsers) the coverage counters and comparison tracing that guide libFuzzer too.
    swift build -c debug --scratch-path "$scratch" --sanitize=fuzzer --sanitize=address -Xswiftc -use-ld=lld \
        -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp >&2
}
bin() { echo "$scratch/debug/Fuzz$1"; }
dict() { [ -f "Dictionaries/$1.dict" ] && echo "-dict=Dictionaries/$1.dict" || true; }

case "${1:-}" in
build) build ;;
seeds)
    rm -rf "$scratch/seeds"
    python3 make-seeds.py "$scratch/seeds" ;;
replay)
    build
    for t in "${targets[@]}"; do
        dirs=()
        for d in "Corpus/$t" "Regressions/$t"; do [ -d "$d" ] && dirs+=("$d"); done
        [ ${#dirs[@]} -gt 0 ] || { echo "no corpus for $t" >&2; exit 1; }
        n=$(find "${dirs[@]}" -type f | wc -l)
        # -runs=0: execute every input of the folders once, then stop; any crash or ASan report fails.
        malloc=""; [ "$t" = Budget ] && malloc="-malloc_limit_mb=64"
        "$(bin "$t")" -runs=0 -timeout=10 -rss_limit_mb=2048 $malloc "${dirs[@]}" > "$scratch/replay-$t.log" 2>&1 \
            || { tail -40 "$scratch/replay-$t.log" >&2; echo "fuzz replay FAILED: $t" >&2; exit 1; }
        echo "fuzz replay: $t: $n inputs, no crash"
    done ;;
campaign)
    runs=${2:-1000000}
    shift $(( $# >= 2 ? 2 : $# ))
    [ $# -gt 0 ] && targets=("$@")
    build
    [ -d "$scratch/seeds" ] || python3 make-seeds.py "$scratch/seeds"
    for t in "${targets[@]}"; do
        mkdir -p "Corpus/$t" "Regressions/$t" "$scratch/work/$t"
        cp -n "Corpus/$t"/* "$scratch/seeds/$t"/* "$scratch/work/$t/" 2>/dev/null || true
        start=$(date +%s)
        # Budget: the target's budget is 48 MB, so no single allocation may pass 64 MB.
        malloc=""; [ "$t" = Budget ] && malloc="-malloc_limit_mb=64"
        "$(bin "$t")" "$scratch/work/$t" -runs="$runs" -max_len=16384 -timeout="${FUZZ_TIMEOUT:-1}" -rss_limit_mb=2048 $malloc \
            ${FUZZ_SECONDS:+-max_total_time=$FUZZ_SECONDS} -use_value_profile=1 -print_final_stats=1 -artifact_prefix="Regressions/$t/" $(dict "$t") \
            > "$scratch/campaign-$t.log" 2>&1 || echo "campaign: $t stopped with a finding, see $scratch/campaign-$t.log" >&2
        execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$scratch/campaign-$t.log" | grep -o '[0-9]*$' || echo "?")
        # Minimise: keep the inputs that add coverage (when the merge keeps nothing, keep the working corpus).
        rm -rf "$scratch/min/$t"; mkdir -p "$scratch/min/$t"
        "$(bin "$t")" -merge=1 "$scratch/min/$t" "$scratch/work/$t" > "$scratch/merge-$t.log" 2>&1 || true
        from="$scratch/min/$t"; [ -n "$(ls -A "$from")" ] || from="$scratch/work/$t"
        rm -rf "Corpus/$t"; mkdir -p "Corpus/$t"; cp "$from"/* "Corpus/$t/"
        echo "campaign: $t: $execs executions in $(( $(date +%s) - start )) s, corpus $(ls "Corpus/$t" | wc -l) files ($(du -sk "Corpus/$t" | cut -f1) KB), regressions $(ls "Regressions/$t" | wc -l)"
    done ;;
*) sed -n 2,10p "$0" | sed 's/^# \{0,1\}//'; exit 64 ;;
esac
