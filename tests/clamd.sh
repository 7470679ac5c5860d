#!/bin/bash
# clamd.sh - the clamd engine against a real clamd, side by side with the
# in-process libclamav engine on the same signatures.
#
# One clamd (Foreground, run as the invoking user) listens on a Unix socket in
# a private directory and on 127.0.0.1:26140, with a private copy of the test
# signatures, AlertExceedsMax and AlertEncrypted on, StreamMaxLength 10M.
#
#  1. every file of /usr/share/clamav-testfiles and EICAR: both engines must
#     find each with the same name (a table is printed). clam_cache_emax.tgz
#     must not be clean; with these signatures both find the ClamExe in it
#     before the branch that is too deep (a match beats the limit heuristic).
#  2. encrypted archives and a PDF: both "Heuristics.Encrypted.*", the same.
#  3. an 11 MB object: clamd's StreamMaxLength makes it unscannable.
#  4. failover: a dead socket first, then the TCP server -> still scanned;
#     every server dead -> an error, never "clean".
#  5. speed: every message of corpus/ham, whole, through each engine
#     (mq-scanfile --bench), msgs/s printed (run after 6 and 7).
#  6. the content policy through mqscand with engine = "clamd": every case
#     of policy.py (test files attached, zipped, nested; banned names and
#     types; encrypted; too deep; fragment; mass mailer) in every direction
#     must be decided exactly as with libclamav (policy.sh).
#  7. mqscand --once over the same queue of ham messages with each engine,
#     msgs/s printed.
#  8. clamd reloads with an ignore list for the ClamExe signatures: now both
#     engines call clam_cache_emax.tgz Heuristics.Limits.Exceeded.MaxRecursion.
#
# clamd is stopped by PID on exit, whatever happens.
set -u
. "${MQ_SRCDIR:?}/lib.sh"

CLAMD=${MQ_CLAMD:-/usr/sbin/clamd}
PORT=26140
DEADPORT=26141
TESTFILES=/usr/share/clamav-testfiles

[ "$(id -u)" = 0 ] || t_skip "needs root (clamd runs as the invoking user, with no User line)"
[ -x "$CLAMD" ] || t_skip "no $CLAMD (apt-get install clamav-daemon)"
[ -d "${MQ_TESTSIGS:-}" ] || t_skip "no test signatures at ${MQ_TESTSIGS:-}"
[ -d "$TESTFILES" ] || t_skip "no $TESTFILES (apt-get install clamav-testfiles)"
[ -x "${MQ_SCANFILE:-}" ] || t_fail "no mq-scanfile at ${MQ_SCANFILE:-}"

T=$(t_tmpdir clamd)
SOCK=$T/clamd.sock
DB=$T/db
mkdir -p "$DB" "$T/clamdtmp" "$T/lctmp" "$T/files"
# A copy, so that step 8 can add an ignore list; the same signatures, plus
# the mass-mailer signature policy.py's worm case needs.
cp "$MQ_TESTSIGS"/* "$DB/"
marker=$("$SMPAIR_PYTHON" -c 'import sys; sys.path.insert(0, sys.argv[1]); import policy; print(policy.WORM_MARKER.hex())' "$MQ_SRCDIR")
echo "MqScan.Test.Worm.Mydoom.A:0:*:$marker" > "$DB/mqscan-worm.ndb"

CLAMD_PID=
cleanup() {
    if [ -n "$CLAMD_PID" ] && kill -0 "$CLAMD_PID" 2>/dev/null; then
        kill "$CLAMD_PID"
        for _ in $(seq 1 50); do
            kill -0 "$CLAMD_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$CLAMD_PID" 2>/dev/null && kill -9 "$CLAMD_PID"
        wait "$CLAMD_PID" 2>/dev/null
    fi
    rm -f "$T/files/big.bin"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() {
    echo "FAIL: $*"
    [ -f "$T/clamd.log" ] && { echo "--- clamd.log (tail)"; tail -20 "$T/clamd.log"; }
    exit 1
}

cat > "$T/clamd.conf" <<EOF
Foreground yes
LocalSocket $SOCK
TCPSocket $PORT
TCPAddr 127.0.0.1
DatabaseDirectory $DB
TemporaryDirectory $T/clamdtmp
PidFile $T/clamd.pid
LogFile $T/clamd.log
LogTime yes
AlertExceedsMax yes
AlertEncrypted yes
StreamMaxLength 10M
SelfCheck 3600
EOF

"$CLAMD" -c "$T/clamd.conf" > "$T/clamd.out" 2>&1 &
CLAMD_PID=$!

# Loading takes a moment; it answers VERSION once it is ready.
ready=
for _ in $(seq 1 300); do
    kill -0 "$CLAMD_PID" 2>/dev/null || { cat "$T/clamd.out"; fail "clamd exited at start-up"; }
    if v=$("$MQ_SCANFILE" --clamd "unix:$SOCK" --clamd "tcp:127.0.0.1:$PORT" --timeout 2000 \
              --version 2>/dev/null); then
        ready=1
        break
    fi
    sleep 0.1
done
[ -n "$ready" ] || fail "clamd did not answer within 30 s"
echo "clamd ready: $v (pid $CLAMD_PID)"
[ "$(cat "$T/clamd.pid")" = "$CLAMD_PID" ] || fail "clamd's pid file does not hold $CLAMD_PID"
"$MQ_SCANFILE" --clamd "tcp:127.0.0.1:$PORT" --version > /dev/null \
    || fail "clamd does not answer on TCP port $PORT"

# compare EXPECT FILE...: both engines scan each FILE; prints the table and
# checks the verdicts. EXPECT is a function that prints the wanted verdict
# ("INFECTED", "ENCRYPTED", "CLEAN", "UNSCANNABLE", or "NOTCLEAN") for a file
# name.
compare() {
    local expect=$1 line file lv cv want bad=0
    shift
    "$MQ_SCANFILE" --clamd "unix:$SOCK" "$DB" "$@" > "$T/table" 2> "$T/table.err"
    [ $? = 2 ] && { cat "$T/table" "$T/table.err"; fail "mq-scanfile reported errors"; }
    while IFS= read -r line; do
        file=${line%%: libclamav=*}
        lv=${line#*: libclamav=}; lv=${lv%% clamd=*}
        cv=${line##* clamd=}
        printf '%s: libclamav=%s clamd=%s\n' "${file##*/}" "$lv" "$cv"
        want=$($expect "${file##*/}")
        case "$want:${lv%%:*}:${cv%%:*}" in
            NOTCLEAN:CLEAN:*|NOTCLEAN:*:CLEAN|NOTCLEAN:ERROR:*|NOTCLEAN:*:ERROR) bad=1 ;;
            NOTCLEAN:*) ;;
            "$want:$want:$want") ;;
            *) bad=1 ;;
        esac
        [ "$lv" = "$cv" ] || { echo "  ^ the engines disagree"; bad=1; }
    done < "$T/table"
    [ "$(wc -l < "$T/table")" = "$#" ] || fail "expected $# lines from mq-scanfile"
    return $bad
}

# 1. The ClamAV test files and EICAR (from two pieces).
printf '%s%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$EIC' 'AR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' \
    > "$T/files/eicar.com"
expect_testfiles() {
    case "$1" in
        clam_cache_emax.tgz) echo NOTCLEAN ;;
        *) echo INFECTED ;;
    esac
}
echo "== 1. test files"
compare expect_testfiles "$TESTFILES"/* "$T/files/eicar.com" || fail "test files"
n=$(grep -c 'libclamav=INFECTED:.*clamd=INFECTED:' "$T/table")
echo "both engines detect $n of $(wc -l < "$T/table") files"

# 2. Encrypted: ZipCrypto archives made by test-scanner (see there), a PDF
# with a Standard security handler and an unknown user password, and what
# zip(1) and 7z(1) make, when they are installed.
echo "== 2. encrypted archives"
mkdir -p "$T/enc"
if [ -x "$MQ_BUILDDIR/test-scanner" ]; then
    MQ_WRITE_ZIPS=$T/enc "$MQ_BUILDDIR/test-scanner" -p /scanner/encrypted > /dev/null 2>&1 \
        || fail "test-scanner -p /scanner/encrypted"
fi
"$SMPAIR_PYTHON" - "$T/enc/encrypted.pdf" <<'PY' || fail "cannot write the PDF"
import os, sys
objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>",
        b"<< /Length 32 >>\nstream\n" + bytes(range(32)) + b"\nendstream",
        b"<< /Filter /Standard /V 1 /R 2 /O <" + b"11" * 32 + b"> /U <" + b"22" * 32
        + b"> /P -44 >>"]
out, offs = b"%PDF-1.4\n", []
for i, o in enumerate(objs, 1):
    offs.append(len(out))
    out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
xref = len(out)
out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
out += b"".join(b"%010d 00000 n \n" % o for o in offs)
out += (b"trailer\n<< /Size %d /Root 1 0 R /Encrypt 5 0 R /ID [<%s> <%s>] >>\n"
        b"startxref\n%d\n%%%%EOF\n" % (len(objs) + 1, b"ab" * 16, b"ab" * 16, xref))
open(sys.argv[1], "wb").write(out)
PY
printf 'quarterly figures\n' > "$T/files/figures.txt"
if command -v zip > /dev/null; then
    (cd "$T/files" && zip -q -P secret "$T/enc/zip-P.zip" figures.txt eicar.com)
fi
if command -v 7z > /dev/null; then
    (cd "$T/files" && 7z a -psecret "$T/enc/7z-p.7z" figures.txt eicar.com > /dev/null &&
        7z a -psecret -mhe=on "$T/enc/7z-p-mhe.7z" figures.txt > /dev/null)
fi
expect_encrypted() {
    case "$1" in
        mixed.zip) echo INFECTED ;;
        plain.zip) echo CLEAN ;;
        *) echo ENCRYPTED ;;
    esac
}
compare expect_encrypted "$T"/enc/* || fail "encrypted archives"
echo "names seen: $(sed -n 's/.*libclamav=ENCRYPTED:\([^ ]*\) .*/\1/p' "$T/table" | sort -u | tr '\n' ' ')"

# 3. Beyond clamd's StreamMaxLength (10M): unscannable, not clean. libclamav's
# own limit here is 100 MB, so it scans the zeros and finds them clean.
echo "== 3. stream size limit"
head -c 11000000 /dev/zero > "$T/files/big.bin"
for server in "unix:$SOCK" "tcp:127.0.0.1:$PORT"; do
    "$MQ_SCANFILE" --clamd "$server" -- "$T/files/big.bin" > "$T/out" 2>&1
    echo "$server: $(cat "$T/out")"
    grep -q 'big.bin: UNSCANNABLE Limits.Exceeded.StreamMaxLength$' "$T/out" \
        || fail "an 11 MB stream is not unscannable through $server"
done
rm -f "$T/files/big.bin"

# 4. Failover.
echo "== 4. failover"
"$MQ_SCANFILE" --clamd "unix:$T/dead.sock" --clamd "tcp:127.0.0.1:$PORT" -- \
    "$T/files/eicar.com" "$TESTFILES/clam.zip" "$T/files/figures.txt" > "$T/out" 2> "$T/err"
rc=$?
cat "$T/out"
[ $rc = 1 ] || { cat "$T/err"; fail "scan with a dead first server: exit $rc, expected 1"; }
grep -q 'eicar.com: INFECTED MqScan.Test.EICAR' "$T/out" || fail "EICAR not found via failover"
grep -q 'clam.zip: INFECTED MqScan.Test.ClamExe' "$T/out" || fail "clam.zip not found via failover"
grep -q 'figures.txt: CLEAN$' "$T/out" || fail "clean file not clean via failover"
grep -q "after failures: unix:$T/dead.sock: connect: No such file or directory" "$T/err" \
    || { cat "$T/err"; fail "the failover was not logged"; }

"$MQ_SCANFILE" --clamd "unix:$T/dead.sock" --clamd "tcp:127.0.0.1:$DEADPORT" -- \
    "$T/files/eicar.com" "$T/files/figures.txt" > "$T/out" 2> "$T/err"
rc=$?
cat "$T/out" "$T/err"
[ $rc = 2 ] || fail "every server dead: exit $rc, expected 2"
grep -q 'CLEAN' "$T/out" && fail "every server dead, and something was called clean"
[ "$(grep -c ': ERROR$' "$T/out")" = 2 ] || fail "every server dead: expected two errors"
grep -q "no clamd server answered: unix:$T/dead.sock: .*; tcp:127.0.0.1:$DEADPORT: connect: Connection refused" \
    "$T/err" || fail "the error does not name every server"

# 6. The content policy, decided on clamd's verdicts.
echo "== 6. policy through mqscand with engine = clamd"
policy_run() {   # policy_run NAME ENGINE-LINES MAKE-FLAG: queue, config, mqscand --once
    local D=$T/$1
    mkdir -p "$D/mqueue.in" "$D/mqueue.out"
    t_write_config "$D/mqscan.conf" "$D"
    cat >> "$D/mqscan.conf" <<CONF
clamav_database_dir = "$DB"
internal_networks = { "10.0.0.0/8" }
local_domains = { "example.org" }
$2
CONF
    "$SMPAIR_PYTHON" "$MQ_SRCDIR/policy.py" make "$D/mqueue.in" "$D/cases.json" \
        "$MQ_SHARED_DIR" $3 > /dev/null || fail "$1: cannot build the test messages"
    local s e
    s=$(date +%s.%N)
    "$MQSCAND" -c "$D/mqscan.conf" --once -f 2> "$D/mqscand.log" || {
        grep -v ' verdict=' "$D/mqscand.log" | tail -5; fail "$1: mqscand --once"; }
    e=$(date +%s.%N)
    n=$(grep -c ' verdict=' "$D/mqscand.log")
    rate=$(awk "BEGIN{printf \"%.1f\", $n / ($e - $s)}")
}
policy_run policy-clamd "engine = \"clamd\"
clamd_servers = { \"unix:$SOCK\", \"tcp:127.0.0.1:$PORT\" }" --no-ham
"$SMPAIR_PYTHON" "$MQ_SRCDIR/policy.py" check "$T/policy-clamd/cases.json" \
    "$T/policy-clamd/mqscand.log" "$T/policy-clamd/mqueue.out" "$T/policy-clamd/quarantine" ||
    fail "policy decisions with clamd"

# 7. mqscand itself with each engine on the same ham queue (before step 5,
# so that both engines meet the ham messages for the first time).
echo "== 7. mqscand --once over corpus/ham, each engine"
if [ -d "$MQ_SHARED_DIR/corpus/ham" ]; then
    policy_run ham-libclamav 'engine = "libclamav"' --only-ham
    echo "mqscand engine=libclamav: $n messages, $rate msgs/s"
    policy_run ham-clamd "engine = \"clamd\"
clamd_servers = { \"unix:$SOCK\" }" --only-ham
    echo "mqscand engine=clamd:     $n messages, $rate msgs/s"
fi

# 5. What each engine costs: the same messages, whole, one at a time.
echo "== 5. speed"
if [ -d "$MQ_SHARED_DIR/corpus/ham" ]; then
    "$MQ_SCANFILE" --bench --tmpdir "$T/lctmp" --clamd "unix:$SOCK" "$DB" \
        "$MQ_SHARED_DIR"/corpus/ham/* > "$T/bench" || { cat "$T/bench"; fail "bench"; }
    cat "$T/bench"
    grep -q ' errors 0$' "$T/bench" || fail "bench: scan errors"
else
    echo "no $MQ_SHARED_DIR/corpus/ham: not measured"
fi

# 8. With the ClamExe signatures ignored, what is left of clam_cache_emax.tgz
# is its branch deeper than MaxRecursion: both engines must say so.
echo "== 8. limits"
printf 'MqScan.Test.ClamExe.Body\nMqScan.Test.ClamExe.MD5\n' > "$DB/ignore-clamexe.ign2"
exec 3<> "/dev/tcp/127.0.0.1/$PORT" || fail "cannot connect to port $PORT"
printf 'zRELOAD\0' >&3
IFS= read -r -d '' reply <&3
exec 3<&-
[ "$reply" = RELOADING ] || fail "RELOAD answered \"$reply\""
reloaded=
for _ in $(seq 1 200); do
    if "$MQ_SCANFILE" --clamd "unix:$SOCK" -- "$TESTFILES/clam.exe" 2>/dev/null \
            | grep -q 'clam.exe: CLEAN$'; then
        reloaded=1
        break
    fi
    sleep 0.1
done
[ -n "$reloaded" ] || fail "clamd did not reload within 20 s"
expect_limits() { echo UNSCANNABLE; }
compare expect_limits "$TESTFILES/clam_cache_emax.tgz" || fail "limits"
grep -q 'libclamav=UNSCANNABLE:Heuristics.Limits.Exceeded.MaxRecursion clamd=' "$T/table" \
    || fail "clam_cache_emax.tgz: not MaxRecursion"

kill -0 "$CLAMD_PID" 2>/dev/null || fail "clamd died during the test"
echo "PASS"
exit 0
