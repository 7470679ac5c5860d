#!/bin/bash
# compare-amavis.sh - mqscand against amavisd-new + clamd on the same mail,
# run by "make bench-amavis" (as root).
#
# The message set is ../shared/corpus (ham, spam and MIME torture cases) and
# one message carrying EICAR.
#
#   amavisd-new: Debian's package with a private configuration (no spam
#   checks, no DKIM, every destiny D_PASS so that every message reaches the
#   sink; virus scanning by clamd, banned-file checks as shipped), as many
#   children as this machine has cores, listening on 127.0.0.1:26205 and
#   passing mail on to a sink on 127.0.0.1:26206 (sink-count.py). clamd runs on
#   a Unix socket in a private directory, with a private copy of the test
#   signatures. smtp-send.py sends the set on as many connections as
#   amavisd has children; amavisd answers each message only after the sink
#   has taken it, so the time is amavisd's.
#
#   mqscand: the same set queued by a real incoming sendmail
#   (127.0.0.1:26207), then "mqscand --once" with as many workers as cores,
#   the same signatures, spam checks off, its temporary files on tmpfs as
#   for libclamav; the rate is the one mqscand reports (engine loaded, as
#   clamd's was).
#
# Prints messages per second for both, CPU time per message (less
# sensitive to other load on the machine; engine loading excluded for both)
# and the ratios.
#
# amavisd-new and clamav-daemon are installed with apt-get if missing; the
# services those packages start are stopped and disabled at once (only for
# packages installed here). Every process started here is stopped by PID,
# and nothing is left running. COMPARE_SIGS=DIR uses another database (for
# example the one make bench-engine generates) for both.
set -u -o pipefail
: "${MQSCAND:?}" "${SHARED_DIR:?}" "${MQ_SRCDIR:?}" "${BENCH_SRCDIR:?}" "${BENCH_BUILDDIR:?}"
PY=/usr/bin/python3
CORPUS=$SHARED_DIR/corpus
PORT_AMAVIS=26205 PORT_SINK=26206 PORT_SENDMAIL=26207
CHILDREN=$(nproc)
if [ "$(id -u)" != 0 ]; then
    echo "bench-amavis: skipped (needs root: apt-get, amavisd, clamd and sendmail)"
    exit 0
fi
[ -d "$CORPUS/ham" ] || { echo "bench-amavis: no corpus in $SHARED_DIR" >&2; exit 66; }

# --- packages -------------------------------------------------------------
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=()
for p in amavisd-new clamav-daemon; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    before_freshclam=no; installed clamav-freshclam && before_freshclam=yes
    echo "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${missing[@]}" > /dev/null ||
        { apt-get update -q > /dev/null && apt-get install -y -q --no-install-recommends \
            "${missing[@]}" > /dev/null; } || { echo "bench-amavis: apt-get failed" >&2; exit 69; }
    # The packages' own services must not run or start at boot: this is a
    # benchmark, not a mail server.
    services=()
    for p in "${missing[@]}"; do
        case $p in
        amavisd-new) services+=(amavis amavis-mc amavisd-snmp-subagent) ;;
        clamav-daemon) services+=(clamav-daemon) ;;
        esac
    done
    [ $before_freshclam = no ] && installed clamav-freshclam && services+=(clamav-freshclam)
    for s in "${services[@]}"; do
        if [ -d /run/systemd/system ]; then
            systemctl disable --now "$s" > /dev/null 2>&1 || continue
        elif [ -x "/etc/init.d/$s" ]; then
            "/etc/init.d/$s" stop > /dev/null 2>&1
            update-rc.d "$s" disable > /dev/null 2>&1
        else
            continue
        fi
        echo "service $s stopped and disabled"
    done
fi
AMAVISD=$(command -v amavisd-new || command -v amavisd || echo /usr/sbin/amavisd-new)
CLAMD=/usr/sbin/clamd

# --- private directories and processes ------------------------------------
A=$(mktemp -d /tmp/mqscan-amavis.XXXXXX)      # amavisd and clamd; amavis must reach it
chmod 711 "$A"
TMPFS=$(mktemp -d /dev/shm/mqscan-bench.XXXXXX 2>/dev/null || mktemp -d /tmp/mqscan-bench.XXXXXX)
M=$BENCH_BUILDDIR/tmp-bench-amavis            # the sendmail pair and mqscand, as in tests/
SIGS=${COMPARE_SIGS:-}
PIDS=()
stop_pids() {
    local p
    for p in "$@"; do kill "$p" 2>/dev/null; done
    for p in "$@"; do
        for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
    done
}
cleanup() {
    local kids=()
    # amavisd's children go with their parent; their PIDs are taken first
    # so that none can outlive it.
    [ -n "${AMAVISD_PID:-}" ] && kids=($(ps -o pid= --ppid "$AMAVISD_PID" 2>/dev/null))
    stop_pids "${PIDS[@]}"
    [ ${#kids[@]} -gt 0 ] && stop_pids "${kids[@]}"
    smpair_stop
    rm -rf "$A" "$TMPFS" "$M"
}
MQ_SHARED_DIR=$SHARED_DIR
. "$MQ_SRCDIR/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM
for p in $PORT_AMAVIS $PORT_SINK $PORT_SENDMAIL $((PORT_SENDMAIL + 1)); do
    smpair_port_free "$p" || { echo "bench-amavis: 127.0.0.1:$p is in use" >&2; exit 75; }
done
if [ -z "$SIGS" ]; then
    SIGS=$A/sigs
    mkdir "$SIGS"
    cp "$SHARED_DIR"/testsigs/*.?db "$SIGS/"
    chmod 755 "$SIGS"; chmod 644 "$SIGS"/*
fi
# The corpus, and one message with the EICAR test file (assembled here so
# that the string is never stored in the tree), which both must find.
{
    printf 'From: eicar@example.com\nTo: rcpt@example.net\nSubject: eicar\n'
    printf 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n--b\n'
    printf 'Content-Type: text/plain\n\nSee the attachment.\n--b\n'
    printf 'Content-Type: application/octet-stream; name="eicar.com"\n'
    printf 'Content-Transfer-Encoding: 7bit\n\n%s%s\n--b--\n' \
        'X5O!P%@AP[4\PZX54(P^)7CC)7}$' 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
} > "$A/eicar.eml"
chmod 644 "$A/eicar.eml"
files=("$CORPUS"/ham/*.eml "$CORPUS"/spam/*.eml "$CORPUS"/mime/*.eml "$A/eicar.eml")

# CPU seconds (user + system) used so far by the given processes and the
# children they waited for (amavisd runs file(1) on every message).
cpu_of() {
    local t=0 p
    for p in "$@"; do
        t=$((t + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    awk -v t=$t -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", t / hz}'
}

# --- clamd ------------------------------------------------------------------
cat > "$A/clamd.conf" <<CONF
LocalSocket $A/clamd.sock
LocalSocketMode 666
FixStaleSocket yes
Foreground yes
DatabaseDirectory $SIGS
TemporaryDirectory $TMPFS
LogFile $A/clamd.log
PidFile $A/clamd.pid
CONF
"$CLAMD" -c "$A/clamd.conf" > "$A/clamd.out" 2>&1 &
CLAMD_PID=$!
PIDS+=("$CLAMD_PID")
for _ in $(seq 1 600); do
    "$PY" - "$A/clamd.sock" <<'PY' 2>/dev/null && break
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"zPING\0")
sys.exit(0 if s.recv(16).startswith(b"PONG") else 1)
PY
    kill -0 "$CLAMD_PID" 2>/dev/null || { cat "$A/clamd.out" "$A/clamd.log"; exit 69; }
    sleep 0.2
done

# --- the sink and amavisd -------------------------------------------------
"$PY" "$BENCH_SRCDIR/sink-count.py" "$PORT_SINK" "$A/sink.count" > "$A/sink.log" 2>&1 &
PIDS+=($!)
mkdir -p "$A/amavis/tmp" "$A/amavis/db" "$A/amavis/var"
chown -R amavis:amavis "$A/amavis"
sed -e "s|@A@|$A/amavis|g" -e "s|@SOCK@|$A/clamd.sock|g" -e "s|@CHILDREN@|$CHILDREN|g" \
    -e "s|@PORT@|$PORT_AMAVIS|g" -e "s|@SINK@|$PORT_SINK|g" > "$A/amavisd.conf" <<'CONF'
use strict;
# A private amavisd-new: virus scanning through clamd, no spam checks.
$MYHOME = '@A@';
$TEMPBASE = '@A@/tmp';
$ENV{TMPDIR} = $TEMPBASE;
$db_home = '@A@/db';
$helpers_home = '@A@/var';
$lock_file = '@A@/var/amavisd.lock';
$pid_file = '@A@/var/amavisd.pid';
$daemon_user = 'amavis';
$daemon_group = 'amavis';
$max_servers = @CHILDREN@;
$max_requests = 100000;
$child_timeout = 600;
$inet_socket_bind = '127.0.0.1';
$inet_socket_port = @PORT@;
@inet_acl = qw(127.0.0.1);
$unix_socketname = undef;
$forward_method = 'smtp:[127.0.0.1]:@SINK@';
$notify_method = $forward_method;
$myhostname = 'amavis.mqscan.test';
$mydomain = 'mqscan.test';
@local_domains_maps = ( ['.mqscan.test'] );
@mynetworks = qw(127.0.0.0/8);
$do_syslog = 0;
$LOGFILE = '@A@/var/amavis.log';
$log_level = 0;
$enable_db = 0;
$nanny_details_level = 0;
$enable_dkim_verification = 0;
$enable_dkim_signing = 0;
@bypass_spam_checks_maps = (1);
$QUARANTINEDIR = undef;
$virus_quarantine_to = undef;
$banned_quarantine_to = undef;
$bad_header_quarantine_to = undef;
$spam_quarantine_to = undef;
$final_virus_destiny = D_PASS;
$final_banned_destiny = D_PASS;
$final_spam_destiny = D_PASS;
$final_bad_header_destiny = D_PASS;
$warnvirussender = 0;
$warnbannedsender = 0;
$warnbadhsender = 0;
$warnvirusrecip = 0;
$warnbannedrecip = 0;
$virus_admin = undef;
@av_scanners = (
  ['ClamAV-clamd', \&ask_daemon, ["CONTSCAN {}\n", '@SOCK@'],
   qr/\bOK$/m, qr/\bFOUND$/m, qr/^.*?: (?!Infected Archive)(.*) FOUND$/m ],
);
@av_scanners_backup = ();
1;
CONF
"$AMAVISD" -c "$A/amavisd.conf" foreground > "$A/amavisd.out" 2>&1 &
AMAVISD_PID=$!
PIDS+=("$AMAVISD_PID")
for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT_AMAVIS" && head -c 3 <&3 | grep -q 220) 2>/dev/null && break
    kill -0 "$AMAVISD_PID" 2>/dev/null || { cat "$A/amavisd.out" "$A/amavis/var/amavis.log"; exit 69; }
    sleep 0.2
done
for _ in $(seq 1 100); do
    [ "$(ps -o pid= --ppid "$AMAVISD_PID" | wc -l)" -ge "$CHILDREN" ] && break
    sleep 0.1
done
amavis_procs=("$AMAVISD_PID" $(ps -o pid= --ppid "$AMAVISD_PID"))

echo "== amavisd-new $(dpkg-query -W -f='${Version}' amavisd-new) + clamd $("$CLAMD" --version | cut -d/ -f1 | awk '{print $2}'): $CHILDREN children, spam checks off, ${#files[@]} messages on $CHILDREN connections =="
cpu0=$(cpu_of "${amavis_procs[@]}" "$CLAMD_PID")
out=$("$PY" "$BENCH_SRCDIR/smtp-send.py" "$PORT_AMAVIS" "$CHILDREN" "${files[@]}")
cpu1=$(cpu_of "${amavis_procs[@]}" "$CLAMD_PID")
echo "$out" | tail -3
amavis_rate=$(echo "$out" | sed -n 's/.*: \([0-9.]*\) msg\/s$/\1/p' | tail -1)
amavis_sent=$(echo "$out" | sed -n 's/^sent \([0-9]*\) of.*/\1/p' | tail -1)
received=$(wc -l < "$A/sink.count" 2>/dev/null || echo 0)
amavis_cpu=$(awk -v a="$cpu0" -v b="$cpu1" -v n="$amavis_sent" 'BEGIN{printf "%.1f", (b - a) * 1000 / n}')
echo "the sink received $received; amavisd + clamd used $(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN{printf "%.1f", b - a}') CPU s: $amavis_cpu ms per message"
# amavisd's verdicts (a message may have several: CLEAN and BAD-HEADER), from
# its log lines, per task ID: proof that it scanned.
sed -n 's/.*(\([0-9-]*\)) Passed \([^ ,]*\)[ ,].*/\1 \2/p' "$A/amavis/var/amavis.log" |
    sort -u > "$A/verdicts"
echo "amavisd verdicts for $(awk '{print $1}' "$A/verdicts" | sort -u | wc -l) messages:" \
    "$(awk '{print $2}' "$A/verdicts" | sort | uniq -c |
       awk '{printf "%s%d %s", (NR > 1 ? ", " : ""), $1, $2}')"
kids=($(ps -o pid= --ppid "$AMAVISD_PID"))
stop_pids "${PIDS[@]}"
[ ${#kids[@]} -gt 0 ] && stop_pids "${kids[@]}"
PIDS=()
AMAVISD_PID=

# --- mqscand ----------------------------------------------------------------
echo
rm -rf "$M"
smpair_setup "$M" "$PORT_SENDMAIL" || exit 1
smpair_start || exit 1
"$PY" "$BENCH_SRCDIR/smtp-send.py" "$PORT_SENDMAIL" "$CHILDREN" "${files[@]}" > "$M/queue.out" ||
    { cat "$M/queue.out"; exit 1; }
smpair_stop
MQ_TESTSIGS=$SIGS
t_write_config "$M/mqscan.conf" "$M"
cat >> "$M/mqscan.conf" <<CONF
scan_tmp_dir = "$TMPFS/scantmp"
spam_checks = false
notify_postmaster = false
workers = $CHILDREN
CONF
echo "== mqscand --once: $CHILDREN workers, spam checks off, the same ${#files[@]} messages queued by sendmail ($(ls "$M/mqueue.in" | grep -c '^qf') in the queue) =="
out=$("$PY" "$BENCH_SRCDIR/daemon-bench.py" once "$MQSCAND" "$M/mqscan.conf" "mqscand --once") ||
    { echo "$out"; exit 1; }
echo "$out"
mq_rate=$(echo "$out" | sed -n 's/.*s: \([0-9.]*\) msg\/s;.*/\1/p')
mq_cpu=$(echo "$out" | sed -n 's/.*CPU \([0-9.]*\) ms per message.*/\1/p')

echo
awk -v a="$amavis_rate" -v m="$mq_rate" -v ac="$amavis_cpu" -v mc="$mq_cpu" 'BEGIN{
    printf "amavisd-new + clamd: %.1f msg/s, %.1f CPU ms per message\n", a, ac
    printf "mqscand --once:      %.1f msg/s, %.1f CPU ms per message\n", m, mc
    printf "mqscand / amavisd-new: %.1fx the messages per second, %.1fx less CPU per message\n", m / a, ac / mc
}'
