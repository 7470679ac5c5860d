#!/bin/sh
# bench-spam.sh - accuracy and speed of mqscan's spam checks on the labelled
# corpus (SHARED_DIR/corpus/ham and spam), run by "make bench-spam".
#
# 1. heuristics alone, and heuristics + token classifier with 10-fold
#    cross-validation (the classifier never scores mail it learned), no
#    network: the built-in engine, one thread;
# 2. the same with SpamAssassin's spamd as one more input, if spamd is
#    installed and we are root: spamd is started here on 127.0.0.1:26180
#    with its shipped rules, no Bayes and no network tests, and stopped at
#    the end (by its PID).
# SPAM_BENCH_SPAMD=no skips part 2.
set -eu
: "${SPAM_BENCH:?}" "${CONFDIR:?}" "${SHARED_DIR:?}"
HAM=$SHARED_DIR/corpus/ham
SPAM=$SHARED_DIR/corpus/spam
[ -d "$HAM" ] && [ -d "$SPAM" ] || { echo "bench-spam: no corpus in $SHARED_DIR" >&2; exit 66; }
T=$(mktemp -d /tmp/mqscan-bench-spam.XXXXXX)
SPAMD_PID=
cleanup() {
    [ -n "$SPAMD_PID" ] && kill "$SPAMD_PID" 2>/dev/null && wait "$SPAMD_PID" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT INT TERM

conf() {
    cat > "$T/mqscan.conf" <<CONF
incoming_queue_dir = "$T/in"
outgoing_queue_dir = "$T/out"
spam_words = "$CONFDIR/spam.words"
sender_allow = ""
sender_block = ""
recipient_block = ""
ip_allow = ""
ip_block = ""
spf_check = false
$1
CONF
}

echo "== mqscan spam checks: built-in engine (no network) =="
conf ""
"$SPAM_BENCH" -c "$T/mqscan.conf" "$HAM" "$SPAM"

SPAMD=${SPAMD:-/usr/sbin/spamd}
if [ "${SPAM_BENCH_SPAMD:-yes}" = no ]; then
    exit 0
elif [ ! -x "$SPAMD" ] || [ "$(id -u)" != 0 ]; then
    echo
    echo "== with spamd: skipped (needs root and $SPAMD: apt-get install spamd spamassassin) =="
    exit 0
fi

chmod 755 "$T"   # spamd runs as nobody and reads $T/site
mkdir -p "$T/site" "$T/home"
cp /etc/spamassassin/*.pre "$T/site/"
cat > "$T/site/local.cf" <<'CF'
use_bayes 0
bayes_auto_learn 0
skip_rbl_checks 1
dns_available no
CF
chown nobody "$T/home"
"$SPAMD" --listen=127.0.0.1:26180 --allowed-ips=127.0.0.1 --siteconfigpath="$T/site" \
    --nouser-config --local --max-children=2 --min-children=2 --pidfile="$T/spamd.pid" \
    --username=nobody --helper-home-dir="$T/home" --syslog="$T/spamd.log" > "$T/spamd.out" 2>&1 &
SPAMD_PID=$!
for i in $(seq 1 120); do
    if printf 'PING SPAMC/1.5\r\n\r\n' | timeout 2 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", 26180), 2)
s.sendall(sys.stdin.buffer.read())
sys.exit(0 if b"PONG" in s.recv(100) else 1)' 2>/dev/null; then
        break
    fi
    kill -0 "$SPAMD_PID" 2>/dev/null || { cat "$T/spamd.out"; exit 69; }
    sleep 0.5
done
echo
echo "== with spamd (SpamAssassin $(spamassassin --version 2>/dev/null | head -1 | awk '{print $3}'), shipped rules, no Bayes, no network, 2 children) =="
conf "spamd_server = \"tcp:127.0.0.1:26180\"
spamd_timeout = 30000"
start=$(date +%s)
"$SPAM_BENCH" -x -c "$T/mqscan.conf" "$HAM" "$SPAM"
echo "with spamd: $(( $(date +%s) - start )) s wall for the whole corpus"
