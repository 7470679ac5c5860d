#!/bin/bash
# bench-engine.sh - the libclamav engine at production size, run by
# "make bench-engine" (SIGDB=DIR to put the database elsewhere).
#
# 1. gen-sigdb.py builds (once; it is reused while its parameters hold) a
#    synthetic database of 4.1 million signatures in $SIGDB, outside the
#    tree, with the real test signatures in it;
# 2. engine-bench: load and compile time, resident memory, scan speed of
#    the whole corpus in ../shared/corpus with 1 and 2 threads on one
#    engine; the same with the four test signatures, for comparison;
# 3. the real mqscand with that database (needs root and a sendmail pair,
#    as the end-to-end tests do; skipped otherwise): the corpus is queued
#    by a real incoming sendmail on 127.0.0.1:26207, then
#    - mqscand --once with workers = 1 and workers = 2: speed and peak
#      memory (the workers share one engine: memory must not double);
#    - mqscand as a daemon kept busy (daemon-bench.py reload): a SIGHUP
#      builds a second engine while scanning goes on; memory before, at the
#      peak and after, the longest stall, and every message accounted for.
# libclamav's temporary files go to tmpfs (/dev/shm), as scan_tmp_dir
# should on a real gateway. Every process started here is stopped by PID.
#
# BENCH_PARTS (default "engine once reload") picks the parts; MQSCAND may
# name another build of mqscand (make bench-engine MQSCAND=... to compare).
set -u -o pipefail
: "${ENGINE_BENCH:?}" "${MQSCAND:?}" "${SHARED_DIR:?}" "${MQ_SRCDIR:?}" "${BENCH_SRCDIR:?}"
: "${BENCH_BUILDDIR:?}" "${SIGDB:?}"
PY=/usr/bin/python3
CORPUS=$SHARED_DIR/corpus
[ -d "$CORPUS/ham" ] || { echo "bench-engine: no corpus in $SHARED_DIR" >&2; exit 66; }
case $SIGDB in
"$(cd "$BENCH_SRCDIR/.." && pwd -P)"/*) echo "bench-engine: SIGDB must be outside the source tree" >&2; exit 64 ;;
esac

TMPFS=$(mktemp -d /dev/shm/mqscan-bench.XXXXXX 2>/dev/null || mktemp -d /tmp/mqscan-bench.XXXXXX)
T=
cleanup() {
    [ -n "$T" ] && { smpair_stop; rm -rf "$T"; }
    rm -rf "$TMPFS"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PARTS=" ${BENCH_PARTS:-engine once reload} "
part() { case $PARTS in *" $1 "*) return 0 ;; esac; return 1; }

"$PY" "$BENCH_SRCDIR/gen-sigdb.py" --testsigs "$SHARED_DIR/testsigs" "$SIGDB" || exit 1
if part engine; then
    echo
    echo "== engine: $SIGDB =="
    "$ENGINE_BENCH" -t 1 -t 2 --tmpdir "$TMPFS" "$SIGDB" "$CORPUS/ham" "$CORPUS/spam" "$CORPUS/mime" ||
        exit 1
    echo
    echo "== engine: the four test signatures, for comparison =="
    "$ENGINE_BENCH" -t 2 --tmpdir "$TMPFS" "$SHARED_DIR/testsigs" "$CORPUS/ham" "$CORPUS/spam" \
        "$CORPUS/mime" | grep -v '^message set\|^before' || exit 1
fi
part once || part reload || exit 0

echo
if [ "$(id -u)" != 0 ] || [ ! -x /usr/sbin/sendmail ] || [ ! -f /usr/share/sendmail/cf/m4/cf.m4 ] ||
    ! "$PY" -c 'import aiosmtpd' 2>/dev/null; then
    echo "== mqscand: skipped (needs root, sendmail-bin, sendmail-cf and python3-aiosmtpd) =="
    exit 0
fi
MQ_SHARED_DIR=$SHARED_DIR
MQ_TESTSIGS=$SIGDB
. "$MQ_SRCDIR/lib.sh"

T="$BENCH_BUILDDIR/tmp-bench-engine"
rm -rf "$T"
smpair_setup "$T" 26207 || exit 1
smpair_start || exit 1
files=("$CORPUS"/ham/*.eml "$CORPUS"/spam/*.eml "$CORPUS"/mime/*.eml)
echo "== mqscand with $SIGDB: queueing ${#files[@]} messages through sendmail =="
"$PY" "$BENCH_SRCDIR/smtp-send.py" 26207 4 "${files[@]}" | tail -1
smpair_stop
mv "$T/mqueue.in" "$T/template" && mkdir -m 700 "$T/mqueue.in"
echo "$(ls "$T/template" | grep -c '^qf') messages queued"

t_write_config "$T/mqscan.conf" "$T"
cat >> "$T/mqscan.conf" <<CONF
scan_tmp_dir = "$TMPFS/scantmp"
spam_checks = false
notify_postmaster = false
CONF
fresh() {
    rm -rf "$T/mqueue.in" "$T/mqueue.out" "$T/quarantine" "$T/hold" "$T/state" "$TMPFS/scantmp"
    mkdir -m 700 "$T/mqueue.in" "$T/mqueue.out"
    sed -i "s/^workers = .*//" "$T/mqscan.conf"
    echo "workers = $1" >> "$T/mqscan.conf"
}
part once && for w in 1 2; do
    fresh $w
    cp -p "$T"/template/* "$T/mqueue.in/"
    "$PY" "$BENCH_SRCDIR/daemon-bench.py" once "$MQSCAND" "$T/mqscan.conf" \
        "mqscand --once, workers = $w" || exit 1
done

part reload || exit 0
echo
echo "== mqscand daemon, workers = 2, kept busy; SIGHUP after 10 s =="
fresh 2
"$PY" "$BENCH_SRCDIR/daemon-bench.py" reload "$MQSCAND" "$T/mqscan.conf" "$T/template"
