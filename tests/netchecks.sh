#!/bin/bash
# netchecks.sh - the DNSBL, SPF and spamd clients against real servers on
# loopback, driven through mq-netcheck.
#
#  DNSBL, against dnsmasq on 127.0.0.1:26170 (authoritative for .test,
#  NXDOMAIN for names it does not know):
#   1. a listed IPv4 address in two zones: both hits, with their weights
#      and answers; an unlisted one: no hit, no failure.
#   2. 127.255.255.254 ("query refused") is no listing, and is logged.
#   3. IPv6 (nibble name) and IPv4-mapped IPv6 are looked up right.
#   4. cache: the same address again in one process costs no query at
#      dnsmasq (its query log), is answered from the cache; with TTL 0 it
#      is asked again; after the TTL has passed it is asked again.
#   5. a server that never answers (a silent UDP socket, 26172): every zone
#      fails after the timeout (300 ms), the call returns within 300+250 ms;
#      nothing listening (26174): fails at once.
#  SPF, in a private network and mount namespace where dnsmasq listens on
#  127.0.0.1:53 and /etc/resolv.conf points there (libspf2 uses the system
#  resolver): pass (ip4, include:, a:, mx, ip6, null sender via HELO), fail,
#  softfail, neutral, none, permerror (a record that does not parse), and a
#  sender and HELO with CR/LF give a one-line printable header value.
#  spamd, started here on 127.0.0.1:26171 and a Unix socket, with its own
#  site config (no Bayes, no network tests, no user config):
#   6. PING; GTUBE is spam with a huge score and the GTUBE rule; a ham
#      message of the corpus scores low (both over TCP and the Unix socket).
#   7. a message over the size limit is not sent (LIMIT).
#   8. spamd down (26174, nothing listens): TEMP error at once; a server
#      that accepts and never answers (26173): TEMP error within 500+250 ms.
#
# Every process started here is stopped by PID on exit, whatever happens.
set -u
. "${MQ_SRCDIR:?}/lib.sh"

NETCHECK=${MQ_NETCHECK:?MQ_NETCHECK not set}
DNSMASQ=${MQ_DNSMASQ:-/usr/sbin/dnsmasq}
SPAMD=${MQ_SPAMD:-/usr/sbin/spamd}
PY=$SMPAIR_PYTHON
DNSPORT=26170
SPAMDPORT=26171
SILENT_UDP=26172
SILENT_TCP=26173
DEADPORT=26174

[ "$(id -u)" = 0 ] || t_skip "needs root (private network namespace for SPF, spamd -u)"
[ -x "$DNSMASQ" ] || t_skip "no $DNSMASQ (apt-get install dnsmasq-base)"
[ -x "$SPAMD" ] || t_skip "no $SPAMD (apt-get install spamd spamassassin)"
command -v unshare >/dev/null || t_skip "no unshare (util-linux)"
command -v ip >/dev/null || t_skip "no ip (iproute2)"
[ -x "$NETCHECK" ] || t_fail "no mq-netcheck at $NETCHECK"
HAM_DIR=${MQ_SHARED_DIR:-}/corpus/ham
[ -d "$HAM_DIR" ] || t_skip "no ham corpus at $HAM_DIR"

T=$(t_tmpdir netchecks)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        if kill -0 "$p" 2>/dev/null; then
            kill "$p" 2>/dev/null
            for _ in $(seq 1 50); do
                kill -0 "$p" 2>/dev/null || break
                sleep 0.1
            done
            kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null
            wait "$p" 2>/dev/null
        fi
    done
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() {
    echo "FAIL: $*"
    for f in dnsmasq.log spamd.log spf.out; do
        [ -f "$T/$f" ] && { echo "--- $f (tail)"; tail -20 "$T/$f"; }
    done
    exit 1
}
pass=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }

# expect_line OUTPUT REGEX WHAT
expect() {
    printf '%s\n' "$1" | grep -Eq -- "$2" || { printf '%s\n' "$1"; fail "$3"; }
    ok "$3"
}

# A UDP or TCP socket on loopback that takes what comes and never answers.
silent() {
    "$PY" - "$1" "$2" <<'PY' &
import socket, sys, time
kind, port = sys.argv[1], int(sys.argv[2])
if kind == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    end = time.time() + 120
    while time.time() < end:
        s.recvfrom(4096)
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(8)
    conns = []
    end = time.time() + 120
    s.settimeout(1)
    while time.time() < end:
        try:
            conns.append(s.accept()[0])
        except socket.timeout:
            pass
PY
    PIDS+=($!)
}

ms_now() { date +%s%3N; }

# ---- DNSBL -------------------------------------------------------------------

V6=2001:db8::1
V6NAME=$("$PY" -c 'import ipaddress, sys; print(ipaddress.ip_address(sys.argv[1]).reverse_pointer[:-len(".ip6.arpa")])' $V6)

# dnsmasq_args PORT LOG: the common zone data, for the DNSBL server and for
# the SPF resolver.
dnsmasq_args() {
    echo --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --no-poll \
        --bind-interfaces --listen-address=127.0.0.1 --port="$1" --local=/test/ \
        --user=root --group=root --pid-file= --log-queries --log-facility="$2" \
        --address=/2.0.0.127.bl.mqscan.test/127.0.0.2 \
        --address=/2.0.0.127.bl2.mqscan.test/127.0.0.4 \
        --address=/3.0.0.127.bl.mqscan.test/127.255.255.254 \
        --address=/$V6NAME.bl.mqscan.test/127.0.0.3
}

# shellcheck disable=SC2046
"$DNSMASQ" $(dnsmasq_args $DNSPORT "$T/dnsmasq.log") > "$T/dnsmasq.out" 2>&1 &
PIDS+=($!)
DNSMASQ_PID=$!
ready=
for _ in $(seq 1 50); do
    kill -0 $DNSMASQ_PID 2>/dev/null || { cat "$T/dnsmasq.out"; fail "dnsmasq exited"; }
    if "$NETCHECK" dnsbl --server 127.0.0.1:$DNSPORT --timeout 200 --zone bl.mqscan.test \
           127.0.0.9 2>/dev/null | grep -q 'failed=0'; then
        ready=1
        break
    fi
    sleep 0.1
done
[ -n "$ready" ] || fail "dnsmasq did not answer on 127.0.0.1:$DNSPORT"
# An answer from some other server on the port would make every result moot.
sleep 0.2
kill -0 $DNSMASQ_PID 2>/dev/null || { cat "$T/dnsmasq.out"; fail "dnsmasq exited (port in use?)"; }

dnsbl() {
    "$NETCHECK" dnsbl --server 127.0.0.1:$DNSPORT --zone bl.mqscan.test=2.5 \
        --zone bl2.mqscan.test "$@" 2> "$T/dnsbl.err"
}
queries_for() { grep -c "query\[A\] $1 " "$T/dnsmasq.log"; }

out=$(dnsbl 127.0.0.2 127.0.0.9)
expect "$out" '^127\.0\.0\.2 failed=0 hits=bl\.mqscan\.test:2\.5:127\.0\.0\.2,bl2\.mqscan\.test:1:127\.0\.0\.4 ' \
    "dnsbl: listed in both zones with weights 2.5 and 1"
expect "$out" '^127\.0\.0\.9 failed=0 hits=- ' "dnsbl: unlisted address"

out=$(dnsbl 127.0.0.3)
expect "$out" '^127\.0\.0\.3 failed=0 hits=- ' "dnsbl: 127.255.255.254 is no listing"
grep -q 'answered 127.255.255.254 for 3.0.0.127.bl.mqscan.test: not a listing' "$T/dnsbl.err" \
    || fail "the refusal code was not logged"
ok "dnsbl: the refusal code is logged"

out=$(dnsbl $V6 ::ffff:127.0.0.2)
expect "$out" "^$V6 failed=0 hits=bl\\.mqscan\\.test:2\\.5:127\\.0\\.0\\.3 " "dnsbl: IPv6 nibble name"
grep -q "query\[A\] $V6NAME.bl.mqscan.test " "$T/dnsmasq.log" || fail "no IPv6 query at dnsmasq"
expect "$out" '^::ffff:127\.0\.0\.2 failed=0 hits=bl\.mqscan\.test:2\.5:127\.0\.0\.2,' \
    "dnsbl: IPv4-mapped IPv6 looked up as IPv4"

# Cache: 127.0.0.5 is new; three lookups in one process, one query each zone.
before=$(queries_for 5.0.0.127.bl.mqscan.test)
out=$(dnsbl --ttl 600 127.0.0.5 127.0.0.5 127.0.0.5)
after=$(queries_for 5.0.0.127.bl.mqscan.test)
[ $((after - before)) = 1 ] || { echo "$out"; fail "cache: $((after - before)) queries at dnsmasq, want 1"; }
expect "$out" '^stats queries=2 cache_hits=4$' "dnsbl: cache hit costs no query (dnsmasq saw 1 of 3)"
echo "$out" | sed -n '1p;2p' | sed 's/^/  latency: /'
before=$(queries_for 6.0.0.127.bl.mqscan.test)
out=$(dnsbl --ttl 0 127.0.0.6 127.0.0.6)
after=$(queries_for 6.0.0.127.bl.mqscan.test)
[ $((after - before)) = 2 ] || fail "TTL 0: $((after - before)) queries at dnsmasq, want 2"
expect "$out" '^stats queries=4 cache_hits=0$' "dnsbl: TTL 0 caches nothing"
out=$(dnsbl --ttl 1 127.0.0.7 sleep=1100 127.0.0.7)
expect "$out" '^stats queries=4 cache_hits=0$' "dnsbl: an expired entry is asked again"

# A listing found from the cache is still a listing.
out=$(dnsbl 127.0.0.2 127.0.0.2)
[ "$(echo "$out" | grep -c 'hits=bl\.mqscan\.test:2\.5:127\.0\.0\.2,bl2')" = 2 ] \
    || { echo "$out"; fail "cached listing lost"; }
ok "dnsbl: cached listing"

# A server that never answers, and one where nothing listens.
silent udp $SILENT_UDP
sleep 0.3
t0=$(ms_now)
out=$("$NETCHECK" dnsbl --server 127.0.0.1:$SILENT_UDP --timeout 300 --zone bl.mqscan.test \
      --zone bl2.mqscan.test 127.0.0.2)
took=$(( $(ms_now) - t0 ))
expect "$out" '^127\.0\.0\.2 failed=2 hits=- .*why=bl\.mqscan\.test: no answer within 300 ms; bl2\.mqscan\.test: no answer within 300 ms' \
    "dnsbl: silent server, both zones time out"
call_ms=$(echo "$out" | sed -n 's/.* ms=\([0-9]*\)\..*/\1/p' | head -1)
[ "$call_ms" -ge 295 ] && [ "$call_ms" -lt 550 ] || fail "timeout call took $call_ms ms"
ok "dnsbl: timeout call took $call_ms ms (process $took ms), one deadline for both zones"
out=$("$NETCHECK" dnsbl --server 127.0.0.1:$DEADPORT --timeout 2000 --zone bl.mqscan.test 127.0.0.2)
call_ms=$(echo "$out" | sed -n 's/.* ms=\([0-9]*\)\..*/\1/p' | head -1)
expect "$out" '^127\.0\.0\.2 failed=1 hits=- .*why=bl\.mqscan\.test: receive: Connection refused' \
    "dnsbl: nothing listening is a failure, not a listing"
[ "$call_ms" -lt 500 ] || fail "connection refused took $call_ms ms"

# ---- SPF ---------------------------------------------------------------------

cat > "$T/resolv.conf" <<EOF
nameserver 127.0.0.1
options timeout:1 attempts:1
EOF
# The zone for SPF, on port 53 inside the namespace.
spf_args="$(dnsmasq_args 53 "$T/dnsmasq-spf.log")
  --txt-record=pass.mqscan.test,\"v=spf1 ip4:192.0.2.10 -all\"
  --txt-record=soft.mqscan.test,\"v=spf1 ip4:192.0.2.10 ~all\"
  --txt-record=neutral.mqscan.test,\"v=spf1 ?all\"
  --txt-record=inc.mqscan.test,\"v=spf1 include:pass.mqscan.test -all\"
  --txt-record=a.mqscan.test,\"v=spf1 a:host.mqscan.test -all\"
  --address=/host.mqscan.test/192.0.2.20
  --txt-record=mx.mqscan.test,\"v=spf1 mx -all\"
  --mx-host=mx.mqscan.test,mail.mqscan.test,10
  --address=/mail.mqscan.test/192.0.2.30
  --txt-record=v6.mqscan.test,\"v=spf1 ip6:2001:db8::/32 -all\"
  --txt-record=bad.mqscan.test,\"v=spf1 ip4:192.0.2.300 -all\"
  --txt-record=text.mqscan.test,\"some other text\""
spf_args=$(printf '%s' "$spf_args" | tr '\n' ' ')
cat > "$T/spf-inner.sh" <<EOF
set -u
ip link set lo up || exit 3
mount --bind "$T/resolv.conf" /etc/resolv.conf || exit 3
$DNSMASQ $spf_args > "$T/dnsmasq-spf.out" 2>&1 &
pid=\$!
trap 'kill \$pid 2>/dev/null; wait \$pid 2>/dev/null' EXIT
for _ in \$(seq 1 50); do
    "$NETCHECK" dnsbl --timeout 200 --zone bl.mqscan.test 127.0.0.2 2>/dev/null \
        | grep -q 'failed=0' && break
    sleep 0.1
done
spf() { echo "case \$1"; shift; "$NETCHECK" spf "\$@" 2>&1; }
spf pass 192.0.2.10 helo.mqscan.test alice@pass.mqscan.test
spf fail 192.0.2.99 helo.mqscan.test alice@pass.mqscan.test
spf softfail 192.0.2.99 helo.mqscan.test alice@soft.mqscan.test
spf neutral 192.0.2.99 helo.mqscan.test alice@neutral.mqscan.test
spf include 192.0.2.10 helo.mqscan.test bob@inc.mqscan.test
spf a 192.0.2.20 helo.mqscan.test bob@a.mqscan.test
spf a-fail 192.0.2.21 helo.mqscan.test bob@a.mqscan.test
spf mx 192.0.2.30 helo.mqscan.test bob@mx.mqscan.test
spf ip6 2001:db8::25 helo.mqscan.test bob@v6.mqscan.test
spf none 192.0.2.10 helo.mqscan.test carol@nospf.mqscan.test
spf none-text 192.0.2.10 helo.mqscan.test carol@text.mqscan.test
spf permerror 192.0.2.10 helo.mqscan.test dave@bad.mqscan.test
spf null-sender 192.0.2.10 pass.mqscan.test ''
spf temperror 192.0.2.10 helo.mqscan.test erin@elsewhere.example
spf crlf 192.0.2.99 \$'helo\r\nX-Evil: 1' \$'a\r\nX-Injected: yes\x01@pass.mqscan.test'
EOF
unshare -n -m bash "$T/spf-inner.sh" > "$T/spf.out" 2>&1
rc=$?
[ $rc = 3 ] && fail "could not set up the network namespace"
spf_case() { awk -v c="$1" '/^case /{on = ($2 == c); next} on' "$T/spf.out"; }
for c in pass:pass fail:fail softfail:softfail neutral:neutral include:pass a:pass a-fail:fail \
         mx:pass ip6:pass none:none none-text:none permerror:permerror temperror:temperror null-sender:pass; do
    name=${c%%:*}
    want=${c#*:}
    out=$(spf_case "$name")
    expect "$out" "^result=$want\$" "spf: $name -> $want"
    expect "$out" "^header=$want \\(" "spf: $name has a Received-SPF value"
done
out=$(spf_case crlf)
expect "$out" '^result=fail$' "spf: CR/LF sender is still checked (fail)"
[ "$(printf '%s\n' "$out" | wc -l)" = 2 ] || { printf '%s\n' "$out" | cat -A; fail "spf: header spans lines"; }
printf '%s\n' "$out" | grep '^header=' | LC_ALL=C grep -q '[^ -~]' && fail "spf: control bytes in header"
expect "$out" '^header=fail .*a\?\?X-Injected: yes\?@pass\.mqscan\.test' "spf: CR/LF in sender made '?'"
expect "$out" 'helo\?\?X-Evil: 1' "spf: CR/LF in HELO made '?'"

# ---- spamd -------------------------------------------------------------------

SITE=$T/spamd-site
mkdir -p "$SITE" "$T/spamd-home"
chmod 755 "$T" "$SITE"
# The plugin loaders (.pre) of the installed site config, our own local.cf.
cp /etc/spamassassin/*.pre "$SITE/" || fail "no /etc/spamassassin/*.pre"
cat > "$SITE/local.cf" <<EOF
use_bayes 0
bayes_auto_learn 0
skip_rbl_checks 1
dns_available no
EOF
# spamd drops to nobody: it must read the site directory, and reach its socket.
chown nobody "$T/spamd-home"
"$SPAMD" --listen=127.0.0.1:$SPAMDPORT --listen="$T/spamd.sock" --socketowner=root \
    --socketmode=0600 --allowed-ips=127.0.0.1 --siteconfigpath="$SITE" --nouser-config \
    --local --max-children=2 --min-children=1 --pidfile="$T/spamd.pid" --username=nobody \
    --helper-home-dir="$T/spamd-home" --syslog="$T/spamd.log" > "$T/spamd.out" 2>&1 &
PIDS+=($!)
SPAMD_PID=$!
ready=
for _ in $(seq 1 600); do
    kill -0 $SPAMD_PID 2>/dev/null || { cat "$T/spamd.out"; fail "spamd exited at start-up"; }
    if "$NETCHECK" spamd --server tcp:127.0.0.1:$SPAMDPORT --timeout 2000 --ping 2>/dev/null \
           | grep -q '^ping ok'; then
        ready=1
        break
    fi
    sleep 0.1
done
[ -n "$ready" ] || fail "spamd did not answer PING within 60 s"
kill -0 $SPAMD_PID 2>/dev/null || { cat "$T/spamd.out"; fail "spamd exited (port in use?)"; }
ok "spamd: PING answered"

GTUBE=$T/gtube.eml
cat > "$GTUBE" <<'EOF'
From: spammer@example.com
To: victim@mqscan.test
Subject: Test spam mail (GTUBE)
Message-ID: <gtube@example.com>
Date: Wed, 23 Jul 2003 23:30:00 +0200

This is the GTUBE, the
	Generic
	Test for
	Unsolicited
	Bulk
	Email

XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X
EOF
HAM=$(ls "$HAM_DIR" | sort | head -1)
HAM=$HAM_DIR/$HAM

for server in tcp:127.0.0.1:$SPAMDPORT "unix:$T/spamd.sock"; do
    out=$("$NETCHECK" spamd --server "$server" --timeout 30000 "$GTUBE" "$HAM")
    expect "$out" "^$GTUBE spam=1 score=[0-9]{3,}\\.[0-9] threshold=[0-9.]+ rules=([A-Z0-9_]+,)*GTUBE(,|\$| )" \
        "spamd ($server): GTUBE is spam with a huge score"
    expect "$out" "^$HAM spam=0 score=-?[0-4]\\.[0-9] threshold=" \
        "spamd ($server): ham scores low"
    echo "$out" | sed 's/^/  /'
done
out=$("$NETCHECK" spamd --server tcp:127.0.0.1:$SPAMDPORT --max-size 100 "$GTUBE")
expect "$out" "^$GTUBE error=LIMIT " "spamd: over the size limit, not sent"

out=$("$NETCHECK" spamd --server tcp:127.0.0.1:$DEADPORT --timeout 2000 "$GTUBE")
expect "$out" "^$GTUBE error=TEMP .*Connection refused" "spamd down: TEMP error"
call_ms=$(echo "$out" | sed -n 's/.* ms=\([0-9]*\)\..*/\1/p')
[ "$call_ms" -lt 500 ] || fail "refused connection took $call_ms ms"
silent tcp $SILENT_TCP
sleep 0.3
out=$("$NETCHECK" spamd --server tcp:127.0.0.1:$SILENT_TCP --timeout 500 "$GTUBE")
expect "$out" "^$GTUBE error=TEMP .*no reply in time" "spamd: silent server, TEMP error"
call_ms=$(echo "$out" | sed -n 's/.* ms=\([0-9]*\)\..*/\1/p')
[ "$call_ms" -ge 495 ] && [ "$call_ms" -lt 750 ] || fail "silent spamd call took $call_ms ms"
ok "spamd: silent server gave up after $call_ms ms (timeout 500)"

echo "$pass passed, 0 failed"
