#!/bin/bash
# flood.sh - a worm flood: MQ_FLOOD_MESSAGES (default 20000) messages land in
# the incoming queue at once. mqscand drains them in batches, its resident
# memory does not grow with the queue, nothing leaves unscanned, and the
# time to drain is reported.
#
# 20 real messages are queued by the incoming sendmail (10 with a worm:
# Debian's clamav-testfiles or EICAR as an attachment; 10 clean, 2-40 KB),
# then copied under new queue IDs and renamed into the incoming queue all at
# once, first 2,000, then the full flood, each to a freshly started daemon.
# Checked for each: the incoming queue drains; every copy is in the
# outgoing queue exactly once with one X-mqscan header; no worm copy still
# scans as infected; the postmaster gets one report per batch, not per
# message. Peak resident memory (VmHWM) of the scanning process for the
# full flood must stay within 20 MB of the 2,000-message one.
set -u
. "${MQ_SRCDIR:?}/lib.sh"
t_require_sendmail_pair
[ -x "${MQ_SCANFILE:-}" ] || t_fail "MQ_SCANFILE not built"
[ -d /usr/share/clamav-testfiles ] || t_fail "clamav-testfiles not installed"
N=${MQ_FLOOD_MESSAGES:-20000}
[ "$N" -gt 2000 ] || N=2001     # the full flood must be the larger one

MQPID=
cleanup() {
    [ -n "$MQPID" ] && kill -9 "$MQPID" 2>/dev/null
    smpair_stop
}
trap cleanup EXIT

T=$(t_tmpdir flood)
smpair_setup "$T" 26250 || t_fail "cannot configure sendmail"
smpair_start || t_fail "cannot start sendmail or the sink"
"$SMPAIR_PYTHON" "$MQ_SRCDIR/flood.py" send "$SMPAIR_PORT_IN" || t_fail "sending the templates failed"
smpair_stop
mkdir -p "$T/templates" "$T/stage"
[ "$(ls "$T/mqueue.in" | grep -c '^qf')" = 20 ] || t_fail "sendmail did not queue the 20 templates"
mv "$T"/mqueue.in/[qd]f* "$T/templates/"
t_write_config "$T/mqscan.conf" "$T"

kb() { awk -v k="$2" '$1 == k ":" { print $2 }' "/proc/$1/status"; }

# flood COUNT: one flood into a fresh daemon; sets peak (kB) and secs.
flood() {
    local n=$1 child i infected still reports batches
    rm -rf "$T/mqueue.out" "$T/quarantine" "$T/hold" "$T/state" "$T/mqscand.log"
    mkdir -p "$T/mqueue.out"
    "$MQSCAND" -c "$T/mqscan.conf" -f 2> "$T/mqscand.log" &
    MQPID=$!
    for i in $(seq 1 100); do grep -q 'started (daemon)' "$T/mqscand.log" && break; sleep 0.1; done
    "$SMPAIR_PYTHON" "$MQ_SRCDIR/flood.py" clone "$T/templates" "$T/stage" "$n" || t_fail "clone"
    local start=$EPOCHREALTIME
    "$SMPAIR_PYTHON" "$MQ_SRCDIR/flood.py" drop "$T/stage" "$T/mqueue.in" || t_fail "drop"
    t_wait_empty "$T/mqueue.in" $((n / 10 + 60)) ||
        t_fail "$n: the incoming queue did not drain ($(ls "$T/mqueue.in" | grep -c '^qf') left)"
    secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
    child=$(pgrep -P "$MQPID" | head -n 1)
    [ -n "$child" ] || t_fail "$n: no scanning process"
    peak=$(kb "$child" VmHWM)
    local rss=$(kb "$child" VmRSS) sup=$(kb "$MQPID" VmHWM)
    kill -TERM "$MQPID"; wait "$MQPID"; MQPID=
    "$SMPAIR_PYTHON" "$MQ_SRCDIR/flood.py" check "$T/mqueue.out" "$n" > "$T/infected.list" ||
        t_fail "$n: not every message reached the outgoing queue stamped once"
    infected=$(wc -l < "$T/infected.list")
    still=$(xargs -a "$T/infected.list" -n 500 "$MQ_SCANFILE" "$MQ_TESTSIGS" | grep -c ': INFECTED')
    [ "$still" = 0 ] || t_fail "$n: $still worm copies left the scanner still infected"
    reports=$(grep -c 'postmaster report queued' "$T/mqscand.log")
    batches=$(( (n + 29) / 30 ))
    [ "$reports" -ge 1 ] && [ "$reports" -le $((batches * 2)) ] ||
        t_fail "$n: $reports postmaster reports for about $batches batches"
    grep -q 'inotify queue overflow' "$T/mqscand.log" && echo "  ($n: inotify overflowed; the rescan found the rest)"
    echo "flood of $n: drained in $secs s ($(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.0f", n / s }') msg/s);" \
         "scanning process peak RSS $((peak / 1024)) MB (now $((rss / 1024)) MB), supervisor $((sup / 1024)) MB;" \
         "$infected worm copies cleaned, none still infected; $reports postmaster reports"
}

flood 2000
small=$peak
flood "$N"
[ "$peak" -le $((small + 20 * 1024)) ] ||
    t_fail "peak RSS grew with the queue: $((small / 1024)) MB for 2000, $((peak / 1024)) MB for $N"
echo "PASS: peak RSS $((small / 1024)) MB for 2000 messages, $((peak / 1024)) MB for $N"
