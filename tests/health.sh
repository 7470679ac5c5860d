#!/bin/bash
# health.sh - mqscan-check against a real mqscand on a throw-away spool. No
# sendmail needed: queue files are the ones captured in data/qf/, and alert
# mails are only queued (in the outgoing queue), never sent.
#
#  a. no daemon                         -> CRITICAL (2), "daemon not running"
#  b. mqscand running, empty queue      -> OK (0)
#  c. an old queue entry that stays locked -> CRITICAL "queue stuck"
#  d. signatures older than the limit   -> CRITICAL, daily version shown;
#     too many held messages            -> WARNING (1)
#  e. mqscand killed (-9)               -> CRITICAL "stale pid file";
#     --restart                         -> a new mqscand, OK (0)
#  f. alert mail: one per problem per check_alert_interval, to the
#     postmaster; a cleared problem is mailed again when it comes back
#  g. bad configuration                 -> UNKNOWN (3)
set -u
. "${MQ_SRCDIR:?}/lib.sh"
[ -d "${MQ_TESTSIGS:-}" ] || t_skip "no test signatures at ${MQ_TESTSIGS:-}"
[ -x "${MQSCAN_CHECK:-}" ] || t_fail "MQSCAN_CHECK not built"
[ -x "${MQSCAND:-}" ] || t_fail "MQSCAND not built"
command -v flock >/dev/null || t_skip "no flock(1) (util-linux)"
T=$(t_tmpdir health)
data=$MQ_SRCDIR/data/qf

# Every mqscand this test starts, directly or through --restart.
DPIDS=
cleanup() {
    local p
    exec 9<&- 2>/dev/null
    [ -s "$T/mqscand.pid" ] && DPIDS="$DPIDS $(cat "$T/mqscand.pid")"
    for p in $DPIDS; do
        kill "$p" 2>/dev/null
    done
    for p in $DPIDS; do
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null
    done
}
trap cleanup EXIT

mkdir -p "$T/mqueue.in" "$T/mqueue.out" "$T/stage" "$T/sigs"
# A private copy of the signatures, so their age is ours to set.
cp "$MQ_TESTSIGS"/*.ndb "$MQ_TESTSIGS"/*.hdb "$T/sigs/"
t_write_config "$T/mqscan.conf" "$T"
sed -i "s|^clamav_database_dir = .*|clamav_database_dir = \"$T/sigs\"|" "$T/mqscan.conf"
cat >> "$T/mqscan.conf" <<CONF
check_heartbeat_max_age = 60
check_queue_max_age = 60
check_hold_max = 5
check_alert_interval = 3600
CONF

check() {   # check [OPTIONS]: runs mqscan-check; sets rc and out
    out=$("$MQSCAN_CHECK" -c "$T/mqscan.conf" "$@" 2> "$T/check.err")
    rc=$?
    echo "  [$rc] $out"
}
expect() {  # expect RC PATTERN WHAT
    [ "$rc" = "$1" ] || { cat "$T/check.err"; t_fail "$3: exit $rc, expected $1"; }
    echo "$out" | grep -q -- "$2" || t_fail "$3: the line does not say \"$2\""
    [ "$(echo "$out" | wc -l)" = 1 ] || t_fail "$3: more than one line"
}
daemon_pid() { cat "$T/mqscand.pid" 2>/dev/null; }
wait_heartbeat() {  # wait_heartbeat PID: until state/heartbeat is from PID
    local i
    for i in $(seq 1 100); do
        [ "$(cut -d' ' -f1 "$T/state/heartbeat" 2>/dev/null)" = "$1" ] && return 0
        sleep 0.1
    done
    return 1
}
outq_count() { ls "$T/mqueue.out" | grep -c '^qf'; }

# a. Nothing running.
check --no-mail
expect 2 "^MQSCAN CRITICAL - daemon not running" "a: no daemon"
echo "ok a no daemon: CRITICAL"

# b. mqscand as a daemon (it detaches; its pid comes from the pid file).
"$MQSCAND" -c "$T/mqscan.conf" 2> "$T/mqscand.err" || { cat "$T/mqscand.err"; t_fail "b: mqscand did not start"; }
pid1=$(daemon_pid)
[ -n "$pid1" ] && DPIDS="$DPIDS $pid1"
kill -0 "$pid1" 2>/dev/null || t_fail "b: no mqscand process ($pid1)"
wait_heartbeat "$pid1" || t_fail "b: no heartbeat from pid $pid1"
check --no-mail
expect 0 "^MQSCAN OK - .*daemon running (pid $pid1)" "b: daemon running"
expect 0 "queue: 0 messages" "b: empty queue"
echo "ok b daemon running, empty queue: OK"

# c. An entry two hours old that the daemon cannot claim: we hold sendmail's
# lock on its qf (taken before the file enters the queue, and held by this
# shell's descriptor 9, so no process is left behind).
install -m 600 "$data/multi-rcpt.df" "$T/mqueue.in/dfOLD1"
install -m 600 "$data/multi-rcpt.qf" "$T/stage/qfOLD1"
exec 9< "$T/stage/qfOLD1"
flock -x 9 || t_fail "c: cannot lock the queue file"
touch -d '2 hours ago' "$T/stage/qfOLD1"
mv "$T/stage/qfOLD1" "$T/mqueue.in/qfOLD1"
sleep 1
[ -f "$T/mqueue.in/qfOLD1" ] || t_fail "c: the daemon took a locked message"
check --no-mail
expect 2 "^MQSCAN CRITICAL - queue stuck: 1 message, oldest 2 h (max 60 s)" "c: stuck queue"
echo "$out" | grep -q "daemon running" || t_fail "c: daemon not reported running"
exec 9<&-
t_wait_empty "$T/mqueue.in" 15 || t_fail "c: the daemon did not take the message once unlocked"
check --no-mail
expect 0 "^MQSCAN OK" "c: queue drained"
echo "ok c stuck queue: CRITICAL; drained: OK"

# d. Stale signatures. A daily.cvd header (not loaded: the daemon is already
# running and is restarted only after it is gone) gives the version.
{ printf 'ClamAV-VDB:24 Nov 2026 08-25 +0000:27100:2071234:90:0123456789abcdef:X:builder:1795508700'
  head -c 1000 /dev/zero | tr '\0' ' '; } | head -c 512 > "$T/sigs/daily.cvd"
touch -d '10 days ago' "$T/sigs"/*
check --no-mail
expect 2 "^MQSCAN CRITICAL - signatures too old: newest 10 days old (max 3 days), daily 27100" \
    "d: old signatures"
rm -f "$T/sigs/daily.cvd"
touch "$T/sigs"/*
mkdir -p "$T/sigs.empty"
sed "s|^clamav_database_dir = .*|clamav_database_dir = \"$T/sigs.empty\"|" "$T/mqscan.conf" > "$T/nosigs.conf"
out=$("$MQSCAN_CHECK" -c "$T/nosigs.conf" --no-mail); rc=$?
expect 2 "signatures: no database files in" "d: no signatures"
for i in 1 2 3 4 5 6; do printf 'id: H%s\nreason: test\ntime: 1\nend\n' $i > "$T/hold/H$i.reason"; done
check --no-mail
expect 1 "^MQSCAN WARNING - hold: 6 messages (max 5)" "d: hold area"
rm -f "$T/hold"/H*.reason
check --no-mail
expect 0 "^MQSCAN OK" "d: fresh again"
echo "ok d old signatures and no signatures: CRITICAL; full hold area: WARNING"

# e. Killed daemon, then --restart.
kill -9 "$pid1"
for _ in $(seq 1 50); do kill -0 "$pid1" 2>/dev/null || break; sleep 0.1; done
check --no-mail
expect 2 "^MQSCAN CRITICAL - daemon not running (stale pid file, pid $pid1)" "e: killed daemon"
check --no-mail --restart
pid2=$(daemon_pid)
[ -n "$pid2" ] && DPIDS="$DPIDS $pid2"
expect 0 "^MQSCAN OK - daemon running (pid $pid2)" "e: after --restart"
[ "$pid2" != "$pid1" ] || t_fail "e: the pid file still names the old daemon"
kill -0 "$pid2" 2>/dev/null || t_fail "e: restarted mqscand ($pid2) is not alive"
[ "$(cat "/proc/$pid2/comm")" = mqscand ] || t_fail "e: pid $pid2 is not mqscand"
grep -q restarted "$T/check.err" || t_fail "e: the restart is not reported on stderr"
check --no-mail --restart
expect 0 "daemon running (pid $pid2)" "e: --restart with the daemon running"
[ "$(daemon_pid)" = "$pid2" ] || t_fail "e: --restart started a second daemon"
echo "ok e killed daemon: CRITICAL; --restart: new daemon $pid2, OK"

# f. Alert mail, at most once per problem per check_alert_interval.
touch -d '10 days ago' "$T/sigs"/*
before=$(outq_count)
ls "$T/mqueue.out" | grep '^qf' | sort > "$T/outq.before"
check
expect 2 "^MQSCAN CRITICAL - signatures too old" "f: first alert run"
[ "$(outq_count)" = $((before + 1)) ] || t_fail "f: $(($(outq_count) - before)) mails queued, expected 1"
new=$(ls "$T/mqueue.out" | grep '^qf' | sort | comm -13 "$T/outq.before" -)
grep -q '^RPF:<postmaster@mqscan.test>$' "$T/mqueue.out/$new" || t_fail "f: $new is not to the postmaster"
grep -qi '^H??To: *postmaster@mqscan.test' "$T/mqueue.out/$new" || t_fail "f: $new has no To: header for the postmaster"
grep -q '^S<>$' "$T/mqueue.out/$new" || t_fail "f: $new does not have the null sender"
[ -f "$T/mqueue.out/d${new#q}" ] || t_fail "f: $new has no df file"
grep -q '^signatures CRITICAL [0-9]*$' "$T/state/check-alerts" || t_fail "f: alert state not kept"
check
expect 2 "signatures too old" "f: second alert run"
[ "$(outq_count)" = $((before + 1)) ] || t_fail "f: a second mail within check_alert_interval"
touch "$T/sigs"/*
check
expect 0 "^MQSCAN OK" "f: cleared"
grep -q '^signatures' "$T/state/check-alerts" && t_fail "f: a cleared problem is still remembered"
touch -d '10 days ago' "$T/sigs"/*
check
[ "$(outq_count)" = $((before + 2)) ] || t_fail "f: a problem that came back was not mailed again"
check --no-mail
[ "$(outq_count)" = $((before + 2)) ] || t_fail "f: --no-mail queued a mail"
touch "$T/sigs"/*
echo "ok f alert mail: one per problem and interval, again after it cleared"

# g. No usable configuration.
out=$("$MQSCAN_CHECK" -c "$T/nonexistent.conf" 2>/dev/null); rc=$?
expect 3 "^MQSCAN UNKNOWN - configuration" "g: missing configuration"
out=$("$MQSCAN_CHECK" --bogus 2>/dev/null); rc=$?
[ "$rc" = 3 ] || t_fail "g: bad option: exit $rc, expected 3"
echo "ok g bad configuration or usage: UNKNOWN"
echo PASS
