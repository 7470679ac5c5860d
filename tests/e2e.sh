#!/bin/bash
# e2e.sh - the whole path with real parts: two sendmail instances on
# 127.0.0.1, mqscand with the real libclamav and the test signatures, a
# sink on loopback.
#
# Phase 1 fills the incoming queue over SMTP with a few hundred corpus
# messages plus one message per ClamAV test file and EICAR, runs
# "mqscand --once" over it (and reports its throughput), lets the outgoing
# sendmail deliver, and checks every message at the sink (e2e_check.py).
# Phase 2 runs mqscand as a daemon while mail arrives (inotify, batches,
# a SIGHUP reload in the middle, SIGTERM at the end) and checks again.
set -u
. "${MQ_SRCDIR:?}/lib.sh"
t_require_sendmail_pair
[ -x "${MQ_SCANFILE:-}" ] || t_fail "MQ_SCANFILE not built"
corpus=$MQ_SHARED_DIR/corpus
[ -d "$corpus/ham" ] || t_skip "no corpus at $corpus"

MQPID=
cleanup() {
    [ -n "$MQPID" ] && kill "$MQPID" 2>/dev/null
    smpair_stop
}
trap cleanup EXIT

# --- Phase 1: a full queue, --once -----------------------------------------
T=$(t_tmpdir e2e-once)
smpair_setup "$T" 26110 || t_fail "cannot configure sendmail"
smpair_start || t_fail "cannot start sendmail or the sink"
t_write_config "$T/mqscan.conf" "$T"
# 127.0.0.1, where the test's mail comes from, is outside: inbound, the
# strictest policy.
echo 'internal_networks = { "192.0.2.0/24" }' >> "$T/mqscan.conf"
# This test follows the mail; notifications have their own (ops-e2e.sh).
echo 'notify_postmaster = false' >> "$T/mqscan.conf"
# Spam is scored and flagged here (X-mqscan-SCL is checked) but never
# stopped: every message must arrive. spam-e2e.sh covers the gateway.
echo 'spam_gateway_threshold = 10' >> "$T/mqscan.conf"

specs=()
i=0; for f in "$corpus"/ham/*.eml; do i=$((i+1)); [ $((i % 10)) = 0 ] && specs+=("clean:$f"); done
i=0; for f in "$corpus"/spam/*.eml; do i=$((i+1)); [ $((i % 10)) = 0 ] && specs+=("clean:$f"); done
# What the inbound policy must remove although no signature matches: MIME
# nested past any sane limit, fragments (message/partial) that no scanner
# sees whole, and an encrypted zip. Delivered cleaned, originals quarantined.
for f in "$corpus"/mime/*.eml; do
    case ${f##*/} in
    flanker-enclosed-endless.eml|sa-tdata-spam-olevbmacro-zippwmacro.eml) specs+=("removed:$f") ;;
    *)  if grep -qi '^content-type:[[:space:]]*message/partial' "$f"; then
            specs+=("removed:$f")
        else
            specs+=("clean:$f")
        fi ;;
    esac
done
for f in /usr/share/clamav-testfiles/*; do [ -f "$f" ] && specs+=("attach:$f"); done
specs+=("eicar:")

start=$(date +%s.%N)
"$SMPAIR_PYTHON" "$MQ_SRCDIR/inject.py" "$SMPAIR_PORT_IN" "$T/sent" "${specs[@]}" ||
    t_fail "injection failed"
end=$(date +%s.%N)
queued=$(ls "$T/mqueue.in" | grep -c '^qf')
echo "injected ${#specs[@]} messages in $(awk "BEGIN{printf \"%.1f\", $end - $start}") s; $queued in the incoming queue"
[ "$queued" = "${#specs[@]}" ] || t_fail "sendmail queued $queued of ${#specs[@]}"

cp -a "$T/mqueue.in" "$T/snapshot"
start=$(date +%s.%N)
"$MQSCAND" -c "$T/mqscan.conf" --once -f 2> "$T/mqscand.log"
rc=$?
end=$(date +%s.%N)
grep -E 'processed|left|error' "$T/mqscand.log" | sed 's/^/  /'
[ "$rc" = 0 ] || t_fail "mqscand --once exited $rc"
lines=$(grep -c ' verdict=' "$T/mqscand.log")
[ "$lines" = "${#specs[@]}" ] || t_fail "$lines log lines for ${#specs[@]} messages"
awk "BEGIN{printf \"throughput: %d messages in %.2f s wall: %.1f msg/s\\n\", ${#specs[@]}, $end - $start, ${#specs[@]} / ($end - $start)}"

smpair_flush_out || t_fail "outgoing queue run failed"
left=$(ls "$T/mqueue.out" | grep -c '^qf')
[ "$left" = 0 ] || { tail -20 "$T/out-run.log"; t_fail "$left messages left in the outgoing queue"; }

"$SMPAIR_PYTHON" "$MQ_SRCDIR/e2e_check.py" --sent "$T/sent" --sink "$T/sink" \
    --quarantine "$T/quarantine" --incoming "$T/mqueue.in" --hold "$T/hold" \
    --scanfile "$MQ_SCANFILE" --sigs "$MQ_TESTSIGS" --snapshot "$T/snapshot" ||
    t_fail "phase 1 checks"
smpair_stop

# --- Phase 2: the daemon, mail arriving while it runs ----------------------
# mqscand detaches (no -f) as it would under an init script; a SIGHUP in the
# middle reloads a changed configuration, whose effect the second half of the
# mail must show.
T=$(t_tmpdir e2e-daemon)
smpair_setup "$T" 26120 || t_fail "cannot configure sendmail"
smpair_start || t_fail "cannot start sendmail or the sink"
t_write_config "$T/mqscan.conf" "$T"
echo 'hostname = "before-reload.mqscan.test"' >> "$T/mqscan.conf"
echo 'internal_networks = { "192.0.2.0/24" }' >> "$T/mqscan.conf"
echo 'notify_postmaster = false' >> "$T/mqscan.conf"
echo 'spam_gateway_threshold = 10' >> "$T/mqscan.conf"
"$MQSCAND" -c "$T/mqscan.conf" || t_fail "mqscand did not start as a daemon"
for i in $(seq 1 50); do [ -s "$T/mqscand.pid" ] && break; sleep 0.1; done
MQPID=$(cat "$T/mqscand.pid" 2>/dev/null)
case $MQPID in ''|*[!0-9]*) t_fail "no pid file" ;; esac
kill -0 "$MQPID" || t_fail "the daemon is not running"

specs=()
i=0; for f in "$corpus"/ham/*.eml; do i=$((i+1)); [ $((i % 30)) = 1 ] && specs+=("clean:$f"); done
for f in /usr/share/clamav-testfiles/clam.zip /usr/share/clamav-testfiles/clam.exe; do specs+=("attach:$f"); done
specs+=("eicar:")
half=$(( ${#specs[@]} / 2 ))
"$SMPAIR_PYTHON" "$MQ_SRCDIR/inject.py" "$SMPAIR_PORT_IN" "$T/sent" "${specs[@]:0:$half}" ||
    t_fail "injection failed"
t_wait_empty "$T/mqueue.in" 60 || t_fail "the daemon did not empty the incoming queue"
sed -i 's/before-reload/after-reload/' "$T/mqscan.conf"
kill -HUP "$MQPID"
# The reload compiles the engine in the background and is swapped in between
# batches; with four signatures that takes milliseconds.
sleep 1
"$SMPAIR_PYTHON" "$MQ_SRCDIR/inject.py" "$SMPAIR_PORT_IN" "$T/sent" --first $((half + 1)) "${specs[@]:$half}" ||
    t_fail "injection failed"
t_wait_empty "$T/mqueue.in" 60 || t_fail "the daemon did not empty the incoming queue"
before=$(grep -l 'before-reload' "$T"/mqueue.out/qf* | wc -l)
after=$(grep -l 'after-reload' "$T"/mqueue.out/qf* | wc -l)
[ "$before" = "$half" ] && [ "$after" = $(( ${#specs[@]} - half )) ] ||
    t_fail "reload: $before messages stamped before, $after after (expected $half and $(( ${#specs[@]} - half )))"
kill -TERM "$MQPID"
for i in $(seq 1 100); do kill -0 "$MQPID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$MQPID" 2>/dev/null && t_fail "mqscand did not stop on SIGTERM"
MQPID=
[ ! -e "$T/mqscand.pid" ] || t_fail "pid file left behind"
[ -s "$T/state/heartbeat" ] || t_fail "no heartbeat"

smpair_flush_out || t_fail "outgoing queue run failed"
"$SMPAIR_PYTHON" "$MQ_SRCDIR/e2e_check.py" --sent "$T/sent" --sink "$T/sink" \
    --quarantine "$T/quarantine" --incoming "$T/mqueue.in" --hold "$T/hold" \
    --scanfile "$MQ_SCANFILE" --sigs "$MQ_TESTSIGS" || t_fail "phase 2 checks"
echo "PASS"
