#!/bin/bash
# privdrop.sh - mqscand started as root runs as its configured user, and
# what it writes has the owner and modes sendmail and the postmaster tools
# need, no wider.
#
# A real sendmail pair whose incoming instance runs as nobody and which both
# trust nobody (confTRUSTED_USER); mqscand with user = "nobody". Checked:
# --lint names the user, and fails (exit 78) for a user that does not exist;
# the supervisor and the scanning process both run as nobody; 20 messages
# (one with EICAR) go through and arrive scanned; files in the outgoing
# queue, the quarantine, the hold area and state_dir belong to nobody with
# mode 0600 in 0700 directories; a restarted scanning process and a SIGHUP
# reload still work; mqscan-quarantine (root) lists the entry.
set -u
. "${MQ_SRCDIR:?}/lib.sh"
t_require_sendmail_pair
[ "$(id -u)" = 0 ] || t_skip "needs root to change user"
id nobody >/dev/null 2>&1 || t_skip "no user nobody"
U=nobody
UID_N=$(id -u $U)

MQPID=
cleanup() {
    [ -n "$MQPID" ] && kill -9 "$MQPID" 2>/dev/null
    smpair_stop
}
trap cleanup EXIT

T=$(t_tmpdir privdrop)
SMPAIR_USER=$U smpair_setup "$T" 26240 || t_fail "cannot configure sendmail"
SMPAIR_USER=$U smpair_start || t_fail "cannot start sendmail or the sink"
t_write_config "$T/mqscan.conf" "$T"
sed -i "s|^user = .*|user = \"$U\"|; s|^pid_file = .*|pid_file = \"$T/run/mqscand.pid\"|" "$T/mqscan.conf"
# (The postmaster's report would go to a local mailbox, which this pair lacks.)
echo 'notify_postmaster = false' >> "$T/mqscan.conf"
chmod 644 "$T/mqscan.conf"
# What tmpfiles.d does for the real paths: directories that belong to the user.
for d in run quarantine hold state scantmp; do install -d -m 700 -o $U "$T/$d"; done

"$MQSCAND" -c "$T/mqscan.conf" --lint > "$T/lint.out" 2>&1 || t_fail "--lint failed: $(cat "$T/lint.out")"
grep -q "^user: $U" "$T/lint.out" || t_fail "--lint does not name the user"
sed "s|^user = .*|user = \"no-such-user-mq\"|" "$T/mqscan.conf" > "$T/bad.conf"
"$MQSCAND" -c "$T/bad.conf" --lint > "$T/lint.out" 2>&1
rc=$?
[ "$rc" = 78 ] && grep -q 'user no-such-user-mq does not exist' "$T/lint.out" ||
    t_fail "a missing user: --lint exit $rc: $(cat "$T/lint.out")"
echo "ok 1 --lint names the user; a missing one is exit 78 with the fix"

"$SMPAIR_PYTHON" "$MQ_SRCDIR/numbered.py" send "$SMPAIR_PORT_IN" 20 || t_fail "injection failed"
[ "$(stat -c %U "$(ls -d "$T"/mqueue.in/qf* | head -n 1)")" = $U ] ||
    t_fail "the incoming sendmail does not write as $U"
"$MQSCAND" -c "$T/mqscan.conf" -f 2> "$T/mqscand.log" &
MQPID=$!
t_wait_empty "$T/mqueue.in" 60 || t_fail "the incoming queue did not drain: $(tail -3 "$T/mqscand.log")"
grep -q "running as $U (uid $UID_N" "$T/mqscand.log" || t_fail "no 'running as' log line"
uids() { awk '/^Uid:/ { print $2 "," $3 "," $4 "," $5 }' "/proc/$1/status"; }
child=$(pgrep -P "$MQPID" | head -n 1)
[ -n "$child" ] || t_fail "no scanning process"
for p in "$MQPID" "$child"; do
    [ "$(uids "$p")" = "$UID_N,$UID_N,$UID_N,$UID_N" ] || t_fail "pid $p runs as uids $(uids "$p")"
done
echo "ok 2 the supervisor ($MQPID) and the scanning process ($child) run as $U, all four uids"

# Owners and modes of everything mqscand wrote.
bad=$(find "$T/mqueue.out" "$T/quarantine" "$T/hold" "$T/state" "$T/scantmp" \
      \( -type f \( ! -user $U -o -perm /0077 \) \) -o \( -type d \( ! -user $U -o -perm /0077 \) \) |
      grep -v "^$T/mqueue.out\$")
[ -z "$bad" ] || t_fail "files or directories not $U's or wider than 0600/0700: $bad"
[ "$(find "$T/mqueue.out" -name 'qf*' | wc -l)" -ge 20 ] || t_fail "fewer than 20 messages written"
[ "$(find "$T/quarantine" -type f | wc -l)" -ge 1 ] || t_fail "the infected message is not in quarantine"
echo "ok 3 outgoing queue, quarantine and state: owned by $U, files 0600, directories 0700"

# A restarted scanning process and a reload run as the user too.
kill -9 "$child"
for i in $(seq 1 100); do grep -q 'scanner process restarted' "$T/mqscand.log" && break; sleep 0.1; done
grep -q 'scanner process restarted' "$T/mqscand.log" || t_fail "the scanning process was not restarted"
child=$(pgrep -P "$MQPID" | head -n 1)
[ "$(uids "$child")" = "$UID_N,$UID_N,$UID_N,$UID_N" ] || t_fail "the restarted process runs as $(uids "$child")"
kill -HUP "$MQPID"
for i in $(seq 1 100); do grep -q 'reloaded ' "$T/mqscand.log" && break; sleep 0.1; done
grep -q 'reloaded ' "$T/mqscand.log" || t_fail "the reload as $U failed: $(tail -3 "$T/mqscand.log")"
kill -TERM "$MQPID"; wait "$MQPID"; rc=$?; MQPID=
[ "$rc" = 0 ] || t_fail "exit $rc after SIGTERM"
[ ! -e "$T/run/mqscand.pid" ] || t_fail "the pid file was not removed"
echo "ok 4 a restarted scanning process and a SIGHUP reload run as $U; SIGTERM ends cleanly"

smpair_flush_out || t_fail "outgoing queue run failed"
grep -q 'Sent' "$T/out-run.log" || t_fail "the outgoing sendmail did not deliver $U's queue files"
[ "$(ls "$T/mqueue.out" | grep -c '^qf')" = 0 ] || t_fail "messages left in the outgoing queue"
"$SMPAIR_PYTHON" "$MQ_SRCDIR/numbered.py" check "$T/sink" 20 "$MQ_SCANFILE" "$MQ_TESTSIGS" \
    "$T/quarantine" privdrop || t_fail "sink checks"
"$MQSCAN_QUARANTINE" -c "$T/mqscan.conf" list > "$T/list.out" || t_fail "mqscan-quarantine list failed"
grep -q 'load-20@example.com' "$T/list.out" || t_fail "mqscan-quarantine does not list the entry"
echo "ok 5 the outgoing sendmail (root, trusting $U) delivered all 20; mqscan-quarantine lists the entry"
