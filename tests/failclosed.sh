#!/bin/bash
# failclosed.sh - mqscand never passes mail it could not scan, and never
# blocks the queue on a bad file. No sendmail needed: queue files are the
# real ones captured in data/qf/.
#
#  1. no signatures            -> exit 69, message left in place
#  2. corrupt signatures       -> exit 69, message left in place
#  3. corrupt queue files among good ones -> held with a reason, the good one
#     delivered, sendmail's temp files (tf, xf) untouched
#  4. outgoing queue on a full filesystem -> exit 75, message left in place,
#     nothing half-written in the outgoing queue; delivered once there is room
#  5. engine = "clamd" with no clamd answering -> --lint fails (exit 69),
#     mqscand --once exits 75, message left in place, nothing delivered
#  6. a SIGHUP reload whose signatures do not load -> logged, the running
#     engine goes on: a message sent after it is still scanned and cleaned
set -u
. "${MQ_SRCDIR:?}/lib.sh"
[ -d "${MQ_TESTSIGS:-}" ] || t_skip "no test signatures"
T=$(t_tmpdir failclosed)
data=$MQ_SRCDIR/data/qf
MNT=
cleanup() { [ -n "$MNT" ] && umount "$MNT" 2>/dev/null; }
trap cleanup EXIT

fresh() {   # fresh SIGDIR: empty queues and a config using SIGDIR
    rm -rf "$T/mqueue.in" "$T/mqueue.out" "$T/hold" "$T/quarantine" "$T/state"
    mkdir -p "$T/mqueue.in" "$T/mqueue.out"
    t_write_config "$T/mqscan.conf" "$T"
    sed -i "s|^clamav_database_dir = .*|clamav_database_dir = \"$1\"|" "$T/mqscan.conf"
}
put() {     # put ID QF DF: a queue entry, mode 0600 as sendmail writes it
    install -m 600 "$2" "$T/mqueue.in/qf$1"
    [ -n "$3" ] && install -m 600 "$3" "$T/mqueue.in/df$1"
    return 0
}
run() {     # run: mqscand --once; sets rc
    "$MQSCAND" -c "$T/mqscan.conf" --once -f 2> "$T/mqscand.log"
    rc=$?
}

# 1. No signatures at all.
mkdir -p "$T/nosigs"
fresh "$T/nosigs"
put A1 "$data/multi-rcpt.qf" "$data/multi-rcpt.df"
run
[ "$rc" = 69 ] || t_fail "no signatures: exit $rc, expected 69"
[ -f "$T/mqueue.in/qfA1" ] && [ -f "$T/mqueue.in/dfA1" ] || t_fail "no signatures: message moved"
[ -z "$(ls "$T/mqueue.out")" ] || t_fail "no signatures: something reached the outgoing queue"
grep -q 'cannot start' "$T/mqscand.log" || t_fail "no signatures: not said loudly"
echo "ok 1 no signatures: exit 69, message held in the incoming queue"

# 2. A corrupt signature file.
mkdir -p "$T/badsigs"
printf 'Broken.Sig:0:*:zz\nnot a signature at all\n' > "$T/badsigs/broken.ndb"
fresh "$T/badsigs"
put A1 "$data/multi-rcpt.qf" "$data/multi-rcpt.df"
run
[ "$rc" = 69 ] || t_fail "corrupt signatures: exit $rc, expected 69"
[ -f "$T/mqueue.in/qfA1" ] || t_fail "corrupt signatures: message moved"
[ -z "$(ls "$T/mqueue.out")" ] || t_fail "corrupt signatures: something reached the outgoing queue"
echo "ok 2 corrupt signatures: exit 69, message held in the incoming queue"

# 3. Corrupt queue files do not block the good ones.
fresh "$MQ_TESTSIGS"
put GOOD1 "$data/multi-rcpt.qf" "$data/multi-rcpt.df"
head -c 200 "$data/multi-rcpt.qf" > "$T/bad.qf"           # no end record
put TRUNC "$T/bad.qf" "$data/multi-rcpt.df"
put NODF "$data/null-sender.qf" ""                         # df missing
printf 'garbage\n.\n' > "$T/garbage.qf"
put GARB "$T/garbage.qf" "$data/multi-rcpt.df"
install -m 600 "$data/multi-rcpt.qf" "$T/mqueue.in/tfTEMP"  # sendmail still writing
install -m 600 "$data/multi-rcpt.qf" "$T/mqueue.in/xfTEMP"
run
[ "$rc" = 0 ] || t_fail "corrupt files: exit $rc, expected 0"
[ -f "$T/mqueue.out/qfGOOD1" ] && [ -f "$T/mqueue.out/dfGOOD1" ] || t_fail "the good message was not delivered"
for id in TRUNC NODF GARB; do
    [ -f "$T/hold/qf$id" ] || t_fail "qf$id not in the hold area"
    grep -q '^reason: corrupt queue file' "$T/hold/$id.reason" || t_fail "$id.reason does not say why"
    grep -q "$id: .*verdict=held" "$T/mqscand.log" || t_fail "no log line for $id"
done
[ -f "$T/hold/dfTRUNC" ] && [ -f "$T/hold/dfGARB" ] || t_fail "df files not held with their qf"
[ -f "$T/mqueue.in/tfTEMP" ] && [ -f "$T/mqueue.in/xfTEMP" ] || t_fail "sendmail's temp files were touched"
[ -z "$(ls "$T/mqueue.in" | grep -E '^[qd]f')" ] || t_fail "entries left in the incoming queue"
echo "ok 3 corrupt queue files: 3 held with reasons, the good one delivered"

# 4. The outgoing queue's filesystem is full.
if [ "$(id -u)" = 0 ] && mkdir -p "$T/small" && mount -t tmpfs -o size=64k,mode=700 tmpfs "$T/small" 2>/dev/null; then
    MNT=$T/small
    fresh "$MQ_TESTSIGS"
    sed -i "s|^outgoing_queue_dir = .*|outgoing_queue_dir = \"$MNT\"|" "$T/mqscan.conf"
    head -c 300000 /dev/urandom | base64 > "$T/big.df"
    put BIG "$data/multi-rcpt.qf" "$T/big.df"
    run
    [ "$rc" = 75 ] || t_fail "disk full: exit $rc, expected 75"
    [ -f "$T/mqueue.in/qfBIG" ] && [ -f "$T/mqueue.in/dfBIG" ] || t_fail "disk full: message moved"
    [ -z "$(ls -A "$MNT")" ] || t_fail "disk full: left behind in the outgoing queue: $(ls -A "$MNT")"
    grep -q 'BIG: .*verdict=deferred.*No space left' "$T/mqscand.log" || t_fail "disk full: not logged"
    umount "$MNT"; MNT=
    sed -i "s|^outgoing_queue_dir = .*|outgoing_queue_dir = \"$T/mqueue.out\"|" "$T/mqscan.conf"
    run
    [ "$rc" = 0 ] && [ -f "$T/mqueue.out/qfBIG" ] && cmp -s "$T/big.df" "$T/mqueue.out/dfBIG" ||
        t_fail "after the disk-full retry the message was not delivered intact"
    echo "ok 4 disk full: exit 75, nothing half-written, delivered on retry"
else
    echo "skip 4 disk full: cannot mount a small tmpfs here (needs root)"
    [ -n "${MQSCAN_REQUIRE_E2E:-}" ] && t_fail "MQSCAN_REQUIRE_E2E is set"
fi
# 5. No clamd answering.
fresh "$MQ_TESTSIGS"
cat >> "$T/mqscan.conf" <<CONF
engine = "clamd"
clamd_servers = { "unix:$T/no-clamd.sock", "tcp:127.0.0.1:26149" }
clamd_timeout = 2
CONF
put A5 "$data/multi-rcpt.qf" "$data/multi-rcpt.df"
"$MQSCAND" -c "$T/mqscan.conf" --lint > "$T/lint.out" 2>&1
rc=$?
[ "$rc" = 69 ] || { cat "$T/lint.out"; t_fail "no clamd: --lint exit $rc, expected 69"; }
grep -q 'no-clamd.sock' "$T/lint.out" || t_fail "no clamd: --lint does not say which server failed"
run
[ "$rc" = 75 ] || t_fail "no clamd: exit $rc, expected 75"
[ -f "$T/mqueue.in/qfA5" ] && [ -f "$T/mqueue.in/dfA5" ] || t_fail "no clamd: message moved"
[ -z "$(ls "$T/mqueue.out")" ] || t_fail "no clamd: something reached the outgoing queue"
grep -q 'A5: .*verdict=deferred.*scanner error' "$T/mqscand.log" || t_fail "no clamd: not logged"
echo "ok 5 no clamd answering: --lint exit 69, --once exit 75, message held in the incoming queue"
# 6. A reload that fails keeps the running engine.
mkdir -p "$T/reloadsigs"
cp "$MQ_TESTSIGS"/* "$T/reloadsigs/"
fresh "$T/reloadsigs"
"$MQSCAND" -c "$T/mqscan.conf" -f 2> "$T/daemon.log" &
DPID=$!
trap 'kill "$DPID" 2>/dev/null; cleanup' EXIT
for i in $(seq 1 50); do grep -q 'started (daemon)' "$T/daemon.log" && break; sleep 0.1; done
# The signatures are replaced by garbage, then a reload is asked for.
rm -f "$T/reloadsigs"/*
printf 'Broken.Sig:0:*:zz\n' > "$T/reloadsigs/broken.ndb"
kill -HUP "$DPID"
for i in $(seq 1 50); do grep -q 'reload failed' "$T/daemon.log" && break; sleep 0.1; done
grep -q 'reload failed, keeping the running configuration and signatures' "$T/daemon.log" ||
    t_fail "reload: the failure is not logged"
# An infected message after the failed reload: the old engine must find it.
"$SMPAIR_PYTHON" - "$T/eicar.df" <<'PY'
import sys
e = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
open(sys.argv[1], "wb").write(b"A message after the failed reload.\n" + e + b"\n")
PY
put R6 "$data/multi-rcpt.qf" "$T/eicar.df"
for i in $(seq 1 100); do [ -f "$T/mqueue.out/qfR6" ] && break; sleep 0.1; done
kill "$DPID"; wait "$DPID" 2>/dev/null
[ -f "$T/mqueue.out/qfR6" ] || t_fail "reload: the message was not processed after the failed reload"
grep -q 'R6: .*verdict=cleaned.*infected MqScan.Test.EICAR' "$T/daemon.log" ||
    t_fail "reload: the message was not scanned by the old engine"
grep -q 'EICAR-STANDARD' "$T/mqueue.out/dfR6" && t_fail "reload: EICAR delivered"
echo "ok 6 failed reload: logged, the old engine scanned and cleaned the next message"
echo PASS
