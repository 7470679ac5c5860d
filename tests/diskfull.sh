#!/bin/bash
# diskfull.sh - the outgoing queue's filesystem fills up under load: nothing
# is lost, nothing is half-written, and everything goes out once there is
# room again.
#
# A real sendmail pair; the outgoing queue is a 256 KB tmpfs. MQ_DISKFULL_MESSAGES
# (default 300) messages of up to 3 KB, one in twenty carrying EICAR, go over
# SMTP into the incoming sendmail, then mqscand runs as a daemon. Checked
# while the disk is full: the daemon logs "No space left" and retries the
# same messages (retry_interval = 1), the rest stays in the incoming queue,
# and after SIGTERM the outgoing queue holds only whole entries (every qf
# with its df, every df with its qf, no tf file). Then the tmpfs is grown,
# the daemon started again drains the incoming queue, the outgoing sendmail
# delivers, and every message arrives exactly once, scanned, none infected.
set -u
. "${MQ_SRCDIR:?}/lib.sh"
t_require_sendmail_pair
[ -x "${MQ_SCANFILE:-}" ] || t_fail "MQ_SCANFILE not built"
[ "$(id -u)" = 0 ] || t_skip "needs root to mount a small tmpfs"
N=${MQ_DISKFULL_MESSAGES:-300}

MQPID= MNT=
cleanup() {
    [ -n "$MQPID" ] && kill -9 "$MQPID" 2>/dev/null
    smpair_stop
    [ -n "$MNT" ] && umount "$MNT" 2>/dev/null
}
trap cleanup EXIT

T=$(t_tmpdir diskfull)
smpair_setup "$T" 26230 || t_fail "cannot configure sendmail"
mount -t tmpfs -o size=256k,mode=700 tmpfs "$T/mqueue.out" || t_fail "cannot mount a tmpfs"
MNT=$T/mqueue.out
smpair_start || t_fail "cannot start sendmail or the sink"
t_write_config "$T/mqscan.conf" "$T"
cat >> "$T/mqscan.conf" <<CONF
notify_postmaster = false
retry_interval = 1
batch_max_messages = 20
CONF

"$SMPAIR_PYTHON" "$MQ_SRCDIR/numbered.py" send "$SMPAIR_PORT_IN" "$N" || t_fail "injection failed"
queued=$(ls "$T/mqueue.in" | grep -c '^qf')
[ "$queued" = "$N" ] || t_fail "sendmail queued $queued of $N"

"$MQSCAND" -c "$T/mqscan.conf" -f 2> "$T/mqscand.log" &
MQPID=$!
# Full, and retried: some ID deferred for lack of space at least 3 times.
for i in $(seq 1 300); do
    retried=$(grep 'verdict=deferred.*No space left' "$T/mqscand.log" |
              sed 's/^mqscand: error: \([A-Za-z0-9]*\):.*/\1/' | sort | uniq -c | sort -rn |
              awk 'NR == 1 { print $1 }')
    [ "${retried:-0}" -ge 3 ] && break
    sleep 0.1
done
[ "${retried:-0}" -ge 3 ] || { tail -5 "$T/mqscand.log"; t_fail "no message retried 3 times on a full disk"; }
kill -TERM "$MQPID"; wait "$MQPID"; rc=$?; MQPID=
[ "$rc" = 0 ] || t_fail "mqscand exit $rc after SIGTERM"
left=$(ls "$T/mqueue.in" | grep -c '^qf')
out=$(ls "$MNT" | grep -c '^qf')
[ "$left" -gt 0 ] || t_fail "the disk never filled: nothing left in the incoming queue"
for f in "$MNT"/*; do
    name=${f##*/}
    case $name in
    qf*) [ -f "$MNT/df${name#qf}" ] || t_fail "$name without its df" ;;
    df*) [ -f "$MNT/qf${name#df}" ] || t_fail "$name without its qf (half-written)" ;;
    *) t_fail "$name left in the outgoing queue" ;;
    esac
done
df -k "$MNT" | tail -n 1
echo "disk full: $out messages in the outgoing queue, $left waiting in the incoming queue, none half-written; the most retried message was tried $retried times"

mount -o remount,size=64m "$MNT" || t_fail "cannot grow the tmpfs"
"$MQSCAND" -c "$T/mqscan.conf" -f 2>> "$T/mqscand.log" &
MQPID=$!
t_wait_empty "$T/mqueue.in" 120 || t_fail "the incoming queue did not drain once there was room"
kill -TERM "$MQPID"; wait "$MQPID"; MQPID=
smpair_flush_out || t_fail "outgoing queue run failed"
[ "$(ls "$MNT" | grep -c '^qf')" = 0 ] || t_fail "messages left in the outgoing queue"
"$SMPAIR_PYTHON" "$MQ_SRCDIR/numbered.py" check "$T/sink" "$N" "$MQ_SCANFILE" "$MQ_TESTSIGS" \
    "$T/quarantine" diskfull || t_fail "sink checks"
echo PASS
