#!/bin/bash
# crash-kill.sh - SIGKILL at random moments loses nothing and passes nothing
# unscanned.
#
# MQ_CRASH_MESSAGES (default 5000) messages, one in twenty carrying EICAR,
# go over SMTP into the incoming sendmail. mqscand runs as a daemon and is
# killed with SIGKILL at random moments (at least MQ_CRASH_KILLS times,
# default 50) and restarted each time, until the incoming queue is empty.
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
"$SMPAIR_PYTHON" - "$SMPAIR_PORT_IN" "$N" <<'PY' || t_fail "injection failed"
import smtplib, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
eicar = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
s = smtplib.SMTP("127.0.0.1", port)
for i in range(1, n + 1):
    body = b"Message %d of the crash test.\r\n" % i + (b"x" * (i % 3000)) + b"\r\n"
    if i % 20 == 0:
        body += eicar + b"\r\n"
    data = (b"From: crash-%d@example.com\r\nTo: rcpt@example.net\r\nSubject: crash %d\r\n"
            b"X-Crash-Test: %d\r\n\r\n" % (i, i, i)) + body
    s.sendmail("crash-%d@example.com" % i, ["rcpt@example.net"], data)
s.quit()
PY
queued=$(ls "$T/mqueue.in" | grep -c '^qf')
[ "$queued" = "$N" ] || t_fail "sendmail queued $queued of $N"
echo "injected $N messages in $(( $(date +%s) - start )) s"

start_daemon() {
    "$MQSCAND" -c "$T/mqscan.conf" -f 2>> "$T/mqscand.log" &
    MQPID=$!
}

kills=0
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
    kill -9 "$MQPID" 2>/dev/null
    wait "$MQPID" 2>/dev/null
    kills=$((kills + 1))
    start_daemon
    if [ "$kills" -gt $((KILLS * 20)) ]; then
        t_fail "the incoming queue never drained ($left left after $kills kills)"
    fi
done
kill -TERM "$MQPID"; wait "$MQPID"; MQPID=
echo "killed mqscand $kills times with SIGKILL; incoming queue empty"

smpair_flush_out || t_fail "outgoing queue run failed"
left=$(ls "$T/mqueue.out" | grep -c '^qf')
[ "$left" = 0 ] || t_fail "$left messages left in the outgoing queue"

"$SMPAIR_PYTHON" - "$T/sink" "$N" "$MQ_SCANFILE" "$MQ_TESTSIGS" "$T/quarantine" <<'PY' || t_fail "sink checks"
import json, os, re, subprocess, sys
sink, n, scanfile, sigs, quarantine = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
seen, unscanned, infected_files = {}, [], []
for name in os.listdir(sink):
    if not name.endswith(".eml"):
        continue
    raw = open(os.path.join(sink, name), "rb").read()
    head = raw.split(b"\r\n\r\n", 1)[0]
    m = re.search(rb"^X-Crash-Test: (\d+)", head, re.M)
    if m is None:
        continue
    i = int(m.group(1))
    seen[i] = seen.get(i, 0) + 1
    stamps = re.findall(rb"^X-mqscan: ", head, re.M | re.I)
    if len(stamps) != 1:
        unscanned.append(i)
    if i % 20 == 0:
        infected_files.append(os.path.join(sink, name))
lost = [i for i in range(1, n + 1) if i not in seen]
dups = sum(c - 1 for c in seen.values() if c > 1)
# every message that carried EICAR must arrive cleaned
still = 0
for k in range(0, len(infected_files), 200):
    r = subprocess.run([scanfile, sigs] + infected_files[k:k + 200], stdout=subprocess.PIPE)
    still += r.stdout.count(b": INFECTED")
entries = sum(len(os.listdir(os.path.join(quarantine, d))) for d in os.listdir(quarantine)
              if d != "tmp")
print("crash-kill: %d sent, %d arrived, %d lost, %d duplicated, %d unscanned, "
      "%d arrived infected; quarantine holds %d entries for %d infected messages"
      % (n, len(seen), len(lost), dups, len(unscanned), still, entries, n // 20))
if lost:
    print("lost:", lost[:20])
sys.exit(1 if lost or unscanned or still or dups else 0)
PY
echo PASS
