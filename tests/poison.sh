#!/bin/bash
# poison.sh - a message that crashes or hangs the scanner does not stop the
# queue: the scanner process is restarted, the message is retried on its
# own, held after max_attempts with a log line and a report to the
# postmaster, and every other message is delivered.
#
# poison-shim.so (LD_PRELOAD) makes libclamav crash (SIGSEGV) or hang on a
# buffer carrying a marker; mqscand, libclamav and GMime are the real ones.
#
#  1. a crash, in --once mode among 8 good messages: 3 crashes, held, 8 delivered
#  2. a hang (message_time_limit = 2): 3 stops, held, the others delivered
#  3. the daemon: the pid in the pid file survives a crash, SIGTERM stops all
#  4. a record of more attempts than max_attempts: held without being read
set -u
. "${MQ_SRCDIR:?}/lib.sh"
[ -d "${MQ_TESTSIGS:-}" ] || t_skip "no test signatures"
[ -f "${MQ_POISON_SHIM:-}" ] || t_fail "poison-shim.so not built ($MQ_POISON_SHIM)"
T=$(t_tmpdir poison)
data=$MQ_SRCDIR/data/qf
DPID=
trap '[ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null' EXIT

fresh() {
    rm -rf "$T/mqueue.in" "$T/mqueue.out" "$T/hold" "$T/quarantine" "$T/state"
    mkdir -p "$T/mqueue.in" "$T/mqueue.out"
    t_write_config "$T/mqscan.conf" "$T"
    cat >> "$T/mqscan.conf" <<CONF
max_attempts = 3
message_time_limit = 2
workers = 2
CONF
}
put() {     # put ID [MARK]: a queued message, with MARK in its body
    install -m 600 "$data/multi-rcpt.qf" "$T/mqueue.in/qf$1"
    { cat "$data/multi-rcpt.df"; [ -n "${2:-}" ] && echo "$2"; } > "$T/mqueue.in/df$1"
    chmod 600 "$T/mqueue.in/df$1"
}
goods() { for i in 1 2 3 4 5 6 7 8; do put "GOOD$i"; done; }
delivered() {   # the 8 good ones, each once, and nothing of the poison
    for i in 1 2 3 4 5 6 7 8; do
        [ -f "$T/mqueue.out/qfGOOD$i" ] && [ -f "$T/mqueue.out/dfGOOD$i" ] ||
            t_fail "$1: GOOD$i not delivered"
    done
    ! ls "$T/mqueue.out" | grep -q "$2" || t_fail "$1: $2 reached the outgoing queue"
}
held() {        # held ID: in hold_dir with its reason, record gone, postmaster told
    [ -f "$T/hold/qf$1" ] && [ -f "$T/hold/df$1" ] || t_fail "$1 not in the hold area"
    grep -q '^reason: not scanned: processing crashed or ran past message_time_limit 3 times' \
        "$T/hold/$1.reason" || t_fail "$1.reason does not say why: $(cat "$T/hold/$1.reason")"
    grep -q "$1: .*verdict=held" "$T/mqscand.log" || t_fail "no held log line for $1"
    [ -z "$(ls "$T/state/processing")" ] || t_fail "records left: $(ls "$T/state/processing")"
    ! grep -q '[^ ]' "$T"/state/processing/.slot-* 2>/dev/null ||
        t_fail "an attempt left in a slot: $(cat "$T"/state/processing/.slot-*)"
    report=$(grep -l "Queue ID: *$1" "$T"/mqueue.out/df* 2>/dev/null)
    [ -n "$report" ] || t_fail "no postmaster report names $1"
    grep -q 'Action: *hold' "$report" || t_fail "the report does not say hold"
    grep -q 'postmaster@mqscan.test' "$T/mqueue.out/qf${report##*/df}" ||
        t_fail "the report is not addressed to the postmaster"
    [ -f "$T/mqueue.in/qf$1" ] && t_fail "$1 still in the incoming queue"
    return 0
}

# 1. A crash.
fresh
goods
put CRASH1 MQSCAN-TEST-CRASH
start=$EPOCHREALTIME
LD_PRELOAD=$MQ_POISON_SHIM "$MQSCAND" -c "$T/mqscan.conf" --once -f 2> "$T/mqscand.log"
rc=$?
secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
[ "$rc" = 0 ] || { tail -20 "$T/mqscand.log"; t_fail "crash: exit $rc, expected 0"; }
n=$(grep -c 'killed by signal 11' "$T/mqscand.log")
[ "$n" = 3 ] || t_fail "crash: $n crashes logged, expected 3 (max_attempts)"
grep -q 'CRASH1: 1 earlier attempt(s) did not finish; processing it on its own' "$T/mqscand.log" ||
    t_fail "crash: the suspect was not retried on its own"
delivered crash CRASH1
held CRASH1
echo "ok 1 crash: 3 crashes, CRASH1 held and reported, 8 good messages delivered (${secs} s)"

# 2. A hang.
fresh
goods
put HANG1 MQSCAN-TEST-HANG
start=$EPOCHREALTIME
LD_PRELOAD=$MQ_POISON_SHIM timeout 120 "$MQSCAND" -c "$T/mqscan.conf" --once -f 2> "$T/mqscand.log"
rc=$?
secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
[ "$rc" = 0 ] || { tail -20 "$T/mqscand.log"; t_fail "hang: exit $rc, expected 0"; }
n=$(grep -c 'HANG1: still being processed after 2 s' "$T/mqscand.log")
[ "$n" = 3 ] || t_fail "hang: $n time-limit stops logged, expected 3"
[ "$(grep -c 'ran past its time limit; restarting' "$T/mqscand.log")" = 3 ] ||
    t_fail "hang: the supervisor did not restart the scanner 3 times"
delivered hang HANG1
held HANG1
echo "ok 2 hang: 3 stops after 2 s each, HANG1 held and reported, 8 delivered (${secs} s)"

# 3. The daemon: the supervisor keeps the pid, restarts the scanner.
fresh
LD_PRELOAD=$MQ_POISON_SHIM "$MQSCAND" -c "$T/mqscan.conf" -f 2> "$T/mqscand.log" &
DPID=$!
for i in $(seq 1 100); do grep -q 'started (daemon)' "$T/mqscand.log" && break; sleep 0.1; done
[ "$(cat "$T/mqscand.pid")" = "$DPID" ] || t_fail "daemon: the pid file does not name $DPID"
goods
put CRASH2 MQSCAN-TEST-CRASH
for i in $(seq 1 300); do [ -f "$T/hold/qfCRASH2" ] && [ -f "$T/mqueue.out/qfGOOD8" ] && break; sleep 0.1; done
kill -0 "$DPID" 2>/dev/null || t_fail "daemon: the supervisor died"
[ "$(cat "$T/mqscand.pid")" = "$DPID" ] || t_fail "daemon: the pid file changed"
kill -TERM "$DPID"; wait "$DPID"; rc=$?; pid=$DPID; DPID=
[ "$rc" = 0 ] || t_fail "daemon: exit $rc after SIGTERM, expected 0"
pgrep -f "$T/mqscan.conf" >/dev/null && t_fail "daemon: a scanner process outlived SIGTERM"
delivered daemon CRASH2
held CRASH2
echo "ok 3 daemon: pid $pid kept through 3 crashes, CRASH2 held, 8 delivered, SIGTERM stops it"

# 4. Holding crashed too: the record says more than max_attempts.
fresh
put GOOD1
put READ1
mkdir -p "$T/state/processing"
printf '%10u\n' 4 > "$T/state/processing/READ1"
"$MQSCAND" -c "$T/mqscan.conf" --once -f 2> "$T/mqscand.log" || t_fail "bare hold: exit $?"
[ -f "$T/hold/qfREAD1" ] && [ -f "$T/hold/dfREAD1" ] || t_fail "bare hold: READ1 not held"
grep -q '^reason: not scanned: processing crashed or ran past message_time_limit 4 times' \
    "$T/hold/READ1.reason" || t_fail "bare hold: no reason"
grep -q "Queue ID: *READ1" "$T"/mqueue.out/df* || t_fail "bare hold: no report"
[ -f "$T/mqueue.out/qfGOOD1" ] || t_fail "bare hold: GOOD1 not delivered"
echo "ok 4 a record over max_attempts: held without reading its queue files, reported"
