#!/bin/bash
# fuzz.sh - build the libFuzzer harnesses with clang and run them.
#
#   fuzz.sh          the short run of "make check": every input kept in
#                    regressions/HARNESS is replayed, then each harness
#                    fuzzes a fixed number of runs from its seeds with a fixed
#                    seed (-seed=1), under ASan and UBSan. Fails if a
#                    harness cannot be built or crashes, leaks, trips UBSan
#                    or times out. Without clang it skips (exit 77), unless
#                    MQSCAN_REQUIRE_E2E is set, as in CI: then it fails.
#   fuzz.sh long     "make fuzz": FUZZ_SECONDS (600) per harness, one after
#                    the other; each keeps its corpus in FUZZ_CORPUS/HARNESS
#                    (default ~/.cache/mqscan-fuzz, outside the source tree)
#                    and its crashes in FUZZ_CORPUS/artifacts/HARNESS/.
#                    Prints executions, exec/s and corpus size per harness.
#   fuzz.sh build    only build them (into FUZZ_BUILDDIR/build).
#
# FUZZ_HARNESSES="qf config" limits the harnesses; FUZZ_FLAGS adds libFuzzer
# options (for example "-jobs=2 -workers=2"). To reproduce a crash:
#   build/fuzz-qf CRASH-FILE
# The environment comes from fuzz/Makefile: FUZZ_CC, FUZZ_WARN_CFLAGS,
# FUZZ_PKG_CFLAGS, FUZZ_PKG_LIBS, MQ_TOP_SRCDIR, MQ_TOP_BUILDDIR,
# FUZZ_BUILDDIR, MQ_SHARED_DIR.
#
# The library sources a harness needs are compiled again here with clang
# and coverage instrumentation; libmqscan.la is not used (it is built with
# the project's CC, which need not be clang).
set -u

mode=${1:-check}
src=${MQ_TOP_SRCDIR:?MQ_TOP_SRCDIR not set}
top_build=${MQ_TOP_BUILDDIR:?MQ_TOP_BUILDDIR not set}
work=${FUZZ_BUILDDIR:?FUZZ_BUILDDIR not set}
shared=${MQ_SHARED_DIR:-$src/../shared}
cc=${FUZZ_CC:-clang}
harnesses=${FUZZ_HARNESSES:-qf message rules config}
build=$work/build

# Library modules the harnesses call, and what those call in turn.
lib_modules="error log fsutil qf message rules template config policy sockio"

# Runs (executions, the seeds included) of each harness in the short run:
# a few seconds each on a slow machine.
declare -A short_runs=([qf]=30000 [message]=4000 [rules]=3000 [config]=6000)

# The environment the harnesses run in: criticals from GLib and GMime are
# bugs (as in the unit tests), no slice allocator hiding memory from ASan.
export G_DEBUG=fatal-criticals G_SLICE=always-malloc
# A smaller quarantine than ASan's 256 MB keeps a run of the MIME harness
# near 300 MB instead of 1 GB; a run frees everything it allocates anyway.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1:quarantine_size_mb=64}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export MQ_FUZZ_CONF_DIR=$src/conf

# A check that cannot run here: a skip, or a failure where it is required.
cannot_run() {
    echo "SKIP: $*"
    if [ "$mode" != check ] || [ -n "${MQSCAN_REQUIRE_E2E:-}" ]; then
        echo "fuzz.sh: cannot run the harnesses, and they are required here"
        exit 99
    fi
    exit 77
}

# stale TARGET DEP...: true if TARGET is missing or older than a DEP.
stale() {
    local target=$1 dep
    shift
    [ -e "$target" ] || return 0
    for dep in "$@"; do
        [ "$dep" -nt "$target" ] && return 0
    done
    return 1
}

san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
# shellcheck disable=SC2206
cflags=(-g -O1 -fno-omit-frame-pointer $san ${FUZZ_WARN_CFLAGS:-}
        -I"$top_build" -I"$src" -I"$src/tests" -DFUZZ_CONF_DIR="\"$src/conf\""
        ${FUZZ_PKG_CFLAGS:-})
# shellcheck disable=SC2206
libs=(${FUZZ_PKG_LIBS:-} -lm)

build_all() {
    local sig m h objs=() headers pids=() failed=0

    command -v "$cc" >/dev/null 2>&1 ||
        cannot_run "no C compiler \"$cc\" for the harnesses (apt-get install clang libclang-rt-14-dev)"
    mkdir -p "$build"
    # Another compiler or other flags: everything is built again.
    sig="$cc ${cflags[*]} ${libs[*]}"
    if [ "$(cat "$build/flags" 2>/dev/null)" != "$sig" ]; then
        rm -f "$build"/*
        printf '%s\n' "$sig" > "$build/flags"
    fi
    # A program with -fsanitize=fuzzer: without libclang-rt the link fails.
    if [ ! -x "$build/probe" ]; then
        printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
            'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
            'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return d == NULL && n > 0; }' \
            > "$build/probe.c"
        # shellcheck disable=SC2086
        "$cc" -fsanitize=fuzzer $san -o "$build/probe" "$build/probe.c" > "$build/probe.log" 2>&1 ||
            cannot_run "$cc cannot link libFuzzer programs (apt-get install libclang-rt-14-dev): $(head -3 "$build/probe.log")"
    fi

    headers=("$top_build/config.h" "$src"/mqscan/*.h "$build/flags")
    for m in $lib_modules; do
        objs+=("$build/$m.o")
        stale "$build/$m.o" "$src/mqscan/$m.c" "${headers[@]}" || continue
        "$cc" "${cflags[@]}" -fsanitize=fuzzer-no-link -c -o "$build/$m.o" "$src/mqscan/$m.c" &
        pids+=($!)
        if [ ${#pids[@]} -ge 2 ]; then
            wait "${pids[0]}" || failed=1
            pids=("${pids[@]:1}")
        fi
    done
    for m in "${pids[@]}"; do
        wait "$m" || failed=1
    done
    [ $failed = 0 ] || { echo "FAIL: the library does not build with $cc"; exit 1; }

    for h in $harnesses; do
        local extra=()
        [ -f "$src/fuzz/fuzz-$h.c" ] || { echo "FAIL: no harness fuzz-$h.c"; exit 1; }
        # The message harness splits its input as the unit tests do.
        [ "$h" = message ] && extra=("$src/tests/testutil.c")
        stale "$build/fuzz-$h" "$src/fuzz/fuzz-$h.c" "$src/fuzz/fuzzutil.c" "$src/fuzz/fuzz.h" \
            "$src/tests/testutil.c" "$src/tests/testutil.h" "${objs[@]}" || continue
        echo "building fuzz-$h"
        "$cc" "${cflags[@]}" -fsanitize=fuzzer -o "$build/fuzz-$h" "$src/fuzz/fuzz-$h.c" \
            "$src/fuzz/fuzzutil.c" "${extra[@]}" "${objs[@]}" "${libs[@]}" ||
            { echo "FAIL: fuzz-$h does not build"; exit 1; }
    done
}

# seeds HARNESS DIR: fills DIR with the hand-made seeds of the harness and
# the project's own fixtures for it; prints further (read-only) seed
# directories to use as they are.
seeds() {
    local h=$1 dir=$2 f
    rm -rf "$dir"
    mkdir -p "$dir"
    [ -d "$src/fuzz/seeds/$h" ] && cp "$src/fuzz/seeds/$h"/* "$dir"/
    case $h in
    qf)
        cp "$src"/tests/data/qf/*.qf "$dir"/ ;;
    config)
        cp "$src"/tests/data/config/*.conf "$src/conf/mqscan.conf.in" "$dir"/ ;;
    rules)
        # Every ClamAV test file as an attachment under its own name:
        # archives, executables and documents for libmagic and libarchive.
        if [ -d /usr/share/clamav-testfiles ]; then
            for f in /usr/share/clamav-testfiles/*; do
                [ -f "$f" ] || continue
                { printf 'filename="%s"\n' "${f##*/}"; cat "$f"; } > "$dir/testfile-${f##*/}"
            done
        fi ;;
    message)
        echo "$src/tests/data/mime"
        [ -d "$shared/corpus/mime" ] && echo "$shared/corpus/mime"
        if [ "$mode" = long ]; then
            [ -d "$shared/corpus/ham" ] && echo "$shared/corpus/ham"
            [ -d "$shared/corpus/spam" ] && echo "$shared/corpus/spam"
        fi ;;
    esac
}

# The libFuzzer options every run shares. Messages are cut to 64 KB and
# attachments to 256 KB: with the big seeds (up to 3 MB) every run maps and
# unmaps megabytes under ASan (10 times slower), and structure, not size,
# is what finds bugs there.
common_opts() {
    local h=$1
    echo "-dict=$src/fuzz/dict/$h.dict -rss_limit_mb=2048 -print_final_stats=1"
    case $h in
    message) echo "-max_len=65536" ;;
    rules) echo "-max_len=262144" ;;
    esac
}

run_check() {
    local h bin corpus seed_dirs status=0 files
    for h in $harnesses; do
        bin=$build/fuzz-$h
        files=()
        if [ -d "$src/fuzz/regressions/$h" ]; then
            mapfile -t files < <(find "$src/fuzz/regressions/$h" -type f | sort)
        fi
        if [ ${#files[@]} -gt 0 ]; then
            echo "== fuzz-$h: replaying ${#files[@]} regression input(s)"
            "$bin" -timeout=25 -rss_limit_mb=2048 "${files[@]}" 2>&1 | tail -n 40
            if [ "${PIPESTATUS[0]}" != 0 ]; then
                echo "FAIL: fuzz-$h: a regression input fails again"
                status=1
                continue
            fi
        fi
        corpus=$work/tmp-fuzz/$h
        rm -rf "$corpus"
        mkdir -p "$corpus" "$work/tmp-fuzz/artifacts"
        mapfile -t seed_dirs < <(seeds "$h" "$work/tmp-fuzz/seeds-$h")
        echo "== fuzz-$h: ${short_runs[$h]} runs from the seeds"
        # shellcheck disable=SC2046
        if ! "$bin" -seed=1 -runs="${short_runs[$h]}" -max_total_time=120 -timeout=25 \
            $(common_opts "$h") -artifact_prefix="$work/tmp-fuzz/artifacts/$h-" \
            "$corpus" "$work/tmp-fuzz/seeds-$h" "${seed_dirs[@]}" > "$work/tmp-fuzz/$h.log" 2>&1
        then
            tail -n 60 "$work/tmp-fuzz/$h.log"
            echo "FAIL: fuzz-$h crashed; the input is in $work/tmp-fuzz/artifacts/"
            status=1
        else
            grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec)' \
                "$work/tmp-fuzz/$h.log"
        fi
    done
    return $status
}

run_long() {
    local seconds=${FUZZ_SECONDS:-600} h bin corpus seed_dirs log status=0 rc
    local store=${FUZZ_CORPUS:-${XDG_CACHE_HOME:-$HOME/.cache}/mqscan-fuzz}
    local summary=()
    for h in $harnesses; do
        bin=$build/fuzz-$h
        corpus=$store/$h
        log=$store/logs/$h.log
        mkdir -p "$corpus" "$store/artifacts/$h" "$store/logs"
        mapfile -t seed_dirs < <(seeds "$h" "$store/seeds/$h")
        echo "== fuzz-$h: $seconds s, corpus $corpus, log $log"
        # shellcheck disable=SC2046,SC2086
        "$bin" -max_total_time="$seconds" -timeout="${FUZZ_TIMEOUT:-10}" $(common_opts "$h") \
            -artifact_prefix="$store/artifacts/$h/" ${FUZZ_FLAGS:-} \
            "$corpus" "$store/seeds/$h" "${seed_dirs[@]}" > "$log" 2>&1
        rc=$?
        [ $rc = 0 ] || { tail -n 60 "$log"; echo "fuzz-$h: crash (exit $rc), input in $store/artifacts/$h/"; status=1; }
        summary+=("$(printf '%-8s %s execs, %s exec/s, corpus %s files%s' "$h" \
            "$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)" \
            "$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)" \
            "$(find "$corpus" -type f | wc -l)" "$([ $rc = 0 ] || echo ', CRASHED')")")
    done
    printf '%s\n' "${summary[@]}"
    return $status
}

# Temporary files of the harnesses (the config one) stay in the build tree.
mkdir -p "$work/tmp-fuzz"
export TMPDIR=$work/tmp-fuzz

build_all
case $mode in
build) exit 0 ;;
check) run_check ;;
long) run_long ;;
*) echo "usage: fuzz.sh [check|long|build]" >&2; exit 64 ;;
esac
