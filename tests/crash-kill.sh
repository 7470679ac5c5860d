#!/bin/bash
# crash-kill.sh - SIGKILL at random moments loses nothing and passes nothing
# unscanned.
#
# MQ_CRASH_MESSAGES (default 5000) messages, one in twenty carrying EICAR,
# go over SMTP into the incoming sendmail. mqscand runs as a daemon and is
# killed with SIGKILL at random moments (at least MQ_CRASH_KILLS times,
# default 50) and restarted each time, until the incoming queue is empty:
# every other kill hits the scanning process alone, which its supervisor
# restarts, the others the supervisor, which takes the scanning process
# with it.
# Then the outgoing sendmail delivers and the sink is checked: every message
# arrives (none lost), stamped exactly once by mqscand (none unscanned), no
# infected content arrives, and duplicates are counted (the outgoing queue
# is not run during the kills, so a result written before a kill is found
# again and not written twice: the goal is zero).
set -u
. "${MQ_SRCDIR:?}/lib.sh"
t_require_sendmail_pair
[ -x "${MQ_SCANFILE:-}" ] || t_fail "MQ_SCANFILE not built"
N=${MQ_CRASH_MESSAGES:-5000}
KILLS=${MQ_CRASH_KILLS:-50}

MQPID=
cleanup() {
    [ -n "$MQPID" ] && kill -9 "$MQPID" 2>/dev/null
    smpair_stop
}
trap cleanup EXIT

T=$(t_tmpdir crash-kill)
smpair_setup "$T" 26160 || t_fail "cannot configure sendmail"
smpair_start || t_fail "cannot start sendmail or the sink"
t_write_config "$T/mqscan.conf" "$T"
cat >> "$T/mqscan.conf" <<CONF
internal_networks = { "192.0.2.0/24" }
notify_postmaster = false
batch_max_messages = 20
CONF

start=$(date +%s)
"$SMPAIR_PYTHON" "$MQ_SRCDIR/numbered.py" send "$SMPAIR_PORT_IN" "$N" || t_fail "injection failed"
queued=$(ls "$T/mqueue.in" | grep -c '^qf')
[ "$queued" = "$N" ] || t_fail "sendmail queued $queued of $N"
echo "injected $N messages in $(( $(date +%s) - start )) s"

start_daemon() {
    "$MQSCAND" -c "$T/mqscan.conf" -f 2>> "$T/mqscand.log" &
    MQPID=$!
}

kills=0 child_kills=0
start_daemon
# Kill at random moments: sometimes at once (during start-up or the first
# batch), mostly somewhere in the middle of work.
while :; do
    left=$(ls "$T/mqueue.in" | grep -c '^qf')
    [ "$left" = 0 ] && [ "$kills" -ge "$KILLS" ] && break
    if [ "$left" = 0 ]; then
        # Drained before enough kills: the rest of the kills land on an
        # idle daemon, which must not matter either.
        :
    fi
    sleep "0.$(( RANDOM % 40 + 2 ))"
    child=$(pgrep -P "$MQPID" | head -n 1)
    if [ $((kills % 2)) = 1 ] && [ -n "$child" ]; then
        # The scanning process alone: its supervisor starts a new one.
        kill -9 "$child" 2>/dev/null
        child_kills=$((child_kills + 1))
    else
        # The supervisor (the pid file's pid): everything goes.
        kill -9 "$MQPID" 2>/dev/null
        wait "$MQPID" 2>/dev/null
        start_daemon
    fi
    kills=$((kills + 1))
    if [ "$kills" -gt $((KILLS * 20)) ]; then
        t_fail "the incoming queue never drained ($left left after $kills kills)"
    fi
done
kill -TERM "$MQPID"; wait "$MQPID"; MQPID=
echo "killed mqscand $kills times with SIGKILL ($child_kills of them the scanning process alone); incoming queue empty"

smpair_flush_out || t_fail "outgoing queue run failed"
left=$(ls "$T/mqueue.out" | grep -c '^qf')
[ "$left" = 0 ] || t_fail "$left messages left in the outgoing queue"

"$SMPAIR_PYTHON" "$MQ_SRCDIR/numbered.py" check "$T/sink" "$N" "$MQ_SCANFILE" "$MQ_TESTSIGS" \
    "$T/quarantine" crash-kill || t_fail "sink checks"
echo PASS
