#!/bin/bash
# spam-e2e.sh - the spam checks end to end, with real servers: a sendmail
# pair, dnsmasq as the DNS server (DNSBL zone and SPF records), spamd, a
# token database trained with mqscan-learn, and mqscand.
#
# Everything runs in a private network and mount namespace (root), so that
# dnsmasq can be the system resolver on 127.0.0.1:53 (libspf2 asks the
# system resolver) and so that mail can come from "outside" addresses put
# on the private loopback: 198.51.100.7 (clean, SPF pass for good.example)
# and 192.0.2.10 (listed in bl.mqscan.test, SPF fail for forged.example).
# internal_networks is 127.0.0.0/8, so both are outside: inbound mail.
#
# Checks:
#  1. held-out ham (the last 20 easy_ham, never learned) is delivered, with
#     Received-SPF: pass, and at most one of them flagged (X-Spam-Flag, SCL
#     at or above the store threshold), although each carried a forged
#     X-Spam-Flag: YES;
#  2. held-out spam: at least 16 of 20 are flagged (X-Spam-Flag, subject tag)
#     or stopped at the gateway;
#  3. a message from the DNSBL-listed relay with an SPF-failing sender and
#     an EICAR attachment: SCL 9, quarantined before any virus scan (log:
#     "not scanned for viruses"), never delivered; releasing it is refused
#     because the release scans it;
#  4. sender_block: quarantined; recipient_block: that recipient removed,
#     the other one still gets the message;
#  5. GTUBE: spamd's score alone takes it over the gateway threshold;
#  6. spamd stopped: mail still flows on the built-in score, and the log says so.
set -u
. "${MQ_SRCDIR:?}/lib.sh"

if [ -z "${MQ_SPAM_E2E_NETNS:-}" ]; then
    [ "$(id -u)" = 0 ] || t_skip "needs root (private network namespace)"
    for b in "${MQ_DNSMASQ:-}" "${MQ_SPAMD:-}" "${MQSCAN_LEARN:-}"; do
        [ -n "$b" ] && [ -x "$b" ] || t_skip "missing ${b:-a binary} (dnsmasq-base, spamd)"
    done
    command -v unshare > /dev/null && command -v ip > /dev/null || t_skip "no unshare or ip"
    exec unshare -n -m env MQ_SPAM_E2E_NETNS=1 bash "$0" "$@"
fi

t_require_sendmail_pair
T=$(t_tmpdir spam-e2e)
DNS_PID= SPAMD_PID=
cleanup() {
    [ -n "$SPAMD_PID" ] && kill "$SPAMD_PID" 2> /dev/null
    [ -n "$DNS_PID" ] && kill "$DNS_PID" 2> /dev/null
    smpair_stop
    wait 2> /dev/null
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    [ -f "$T/mqscand.log" ] && tail -30 "$T/mqscand.log"
    exit 1
}
pass=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }

ip link set lo up || t_fail "cannot bring up lo in the namespace"
ip addr add 198.51.100.7/32 dev lo && ip addr add 192.0.2.10/32 dev lo || t_fail "ip addr add"
echo "nameserver 127.0.0.1" > "$T/resolv.conf"
mount --bind "$T/resolv.conf" /etc/resolv.conf || t_fail "cannot bind-mount resolv.conf"

"$MQ_DNSMASQ" --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --no-poll \
    --bind-interfaces --listen-address=127.0.0.1 --port=53 --local=/example/ --local=/test/ \
    --local=/in-addr.arpa/ --user=root --group=root --pid-file= \
    --log-queries --log-facility="$T/dnsmasq.log" \
    --address=/10.2.0.192.bl.mqscan.test/127.0.0.2 \
    --txt-record=good.example,"v=spf1 ip4:198.51.100.7 -all" \
    --txt-record=forged.example,"v=spf1 ip4:203.0.113.1 -all" \
    > "$T/dnsmasq.out" 2>&1 &
DNS_PID=$!

# spamd: shipped rules, no Bayes, no network tests.
# spamd runs as nobody: it must read its site directory.
chmod 755 "$T"
mkdir -p "$T/site" "$T/spamd-home"
cp /etc/spamassassin/*.pre "$T/site/"
printf 'use_bayes 0\nbayes_auto_learn 0\nskip_rbl_checks 1\ndns_available no\n' > "$T/site/local.cf"
chown nobody "$T/spamd-home"
"$MQ_SPAMD" --listen=127.0.0.1:26181 --allowed-ips=127.0.0.1 --siteconfigpath="$T/site" \
    --nouser-config --local --max-children=2 --min-children=1 --pidfile="$T/spamd.pid" \
    --username=nobody --helper-home-dir="$T/spamd-home" --syslog="$T/spamd.log" \
    > "$T/spamd.out" 2>&1 &
SPAMD_PID=$!

# Train on the first 400 ham and 400 spam of the corpus; the test mail
# comes from the other end of each list.
HAM=$MQ_SHARED_DIR/corpus/ham
SPAM=$MQ_SHARED_DIR/corpus/spam
"$MQSCAN_LEARN" --db "$T/bayes.db" --ham $(ls "$HAM" | sort | head -400 | sed "s|^|$HAM/|") \
    > "$T/learn.out" 2>&1 || { cat "$T/learn.out"; fail "mqscan-learn --ham"; }
"$MQSCAN_LEARN" --db "$T/bayes.db" --spam $(ls "$SPAM" | sort | head -400 | sed "s|^|$SPAM/|") \
    >> "$T/learn.out" 2>&1 || { cat "$T/learn.out"; fail "mqscan-learn --spam"; }
"$MQSCAN_LEARN" --db "$T/bayes.db" --stats | grep -q "^ham: 400$" \
    || { "$MQSCAN_LEARN" --db "$T/bayes.db" --stats; fail "the database does not hold 400 ham"; }
ok "mqscan-learn trained 400 ham and 400 spam"

smpair_setup "$T" 26190 || fail "cannot configure sendmail"
# Let the two outside addresses relay through the incoming sendmail.
sed -i "s/^MAILER(\`local')dnl$/RELAY_DOMAIN(\`198.51.100.7 192.0.2.10')dnl\nMAILER(\`local')dnl/" "$T/in.mc"
m4 "$T/in.mc" > "$T/in.cf" || fail "m4 in.cf"
smpair_start || fail "cannot start sendmail or the sink"

printf 'blocked.example\n' > "$T/sender.block"
printf 'all-staff@example.net\n' > "$T/recipient.block"
t_write_config "$T/mqscan.conf" "$T"
cat >> "$T/mqscan.conf" <<CONF
internal_networks = { "127.0.0.0/8" }
local_domains = { "mqscan.test" }
sender_block = "$T/sender.block"
recipient_block = "$T/recipient.block"
spf_check = true
dnsbl_zones = { "bl.mqscan.test" }
dnsbl_server = "127.0.0.1"
dnsbl_timeout = 1000
spamd_server = "tcp:127.0.0.1:26181"
spamd_timeout = 30000
bayes_db = "$T/bayes.db"
spam_store_threshold = 5
spam_gateway_threshold = 9
spam_gateway_action = "quarantine"
batch_max_messages = 100
CONF
"$MQSCAND" -c "$T/mqscan.conf" --lint > "$T/lint.out" 2>&1 || { cat "$T/lint.out"; fail "--lint"; }
grep -q "classifier $T/bayes.db (400 ham, 400 spam)" "$T/lint.out" || { cat "$T/lint.out"; fail "--lint does not show the classifier"; }
ok "--lint: $(grep '^spam:' "$T/lint.out" | cut -c1-100)..."

for i in $(seq 1 120); do
    "$MQ_NETCHECK" spamd --server tcp:127.0.0.1:26181 --timeout 2000 --ping > /dev/null 2>&1 && break
    kill -0 "$SPAMD_PID" 2> /dev/null || { cat "$T/spamd.out"; fail "spamd exited"; }
    sleep 0.5
done

"$SMPAIR_PYTHON" - "$SMPAIR_PORT_IN" "$HAM" "$SPAM" "$T/sent.tsv" <<'PY' || fail "injection failed"
import email, email.mime.application, email.mime.multipart, email.mime.text, os, smtplib, sys
port, ham, spam, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
eicar = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
log = open(out, "w")

def send(src, sender, rcpts, data, label):
    s = smtplib.SMTP("127.0.0.1", port, source_address=(src, 0))
    s.sendmail(sender, rcpts, data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    s.quit()
    log.write("%s\t%s\n" % (label, ",".join(rcpts)))

def tagged(path, label):
    raw = open(path, "rb").read()
    head, _, body = raw.partition(b"\n\n")
    return head + b"\nX-Test-Label: " + label.encode() + b"\n\n" + body

easy = sorted(n for n in os.listdir(ham) if "easy_ham" in n)
for name in easy[-20:]:
    data = tagged(os.path.join(ham, name), "ham")
    data = data.replace(b"\n\n", b"\nX-Spam-Flag: YES\n\n", 1)   # forged verdict
    send("198.51.100.7", "list@good.example", ["bob@example.net"], data, "ham")
for name in sorted(os.listdir(spam))[-20:]:
    send("198.51.100.7", "offers@good.example", ["bob@example.net"],
         tagged(os.path.join(spam, name), "spam"), "spam")

def build(frm, subject, text, attach=None, label=""):
    m = email.mime.multipart.MIMEMultipart()
    m["From"], m["To"], m["Subject"] = frm, "bob@example.net", subject
    m["X-Test-Label"] = label
    m.attach(email.mime.text.MIMEText(text))
    if attach:
        a = email.mime.application.MIMEApplication(attach, Name="tool.com")
        a["Content-Disposition"] = 'attachment; filename="tool.com"'
        m.attach(a)
    return m.as_bytes()

spammy = ("Dear friend, make money fast! Work from home, 100% free, act now, limited time, "
          "click here. This is not spam; to be removed reply REMOVE.\n")
send("192.0.2.10", "x@forged.example", ["bob@example.net"],
     build("x@forged.example", "FREE MONEY FOR YOU!!!", spammy, eicar, "listed"), "listed")
send("198.51.100.7", "boss@blocked.example", ["bob@example.net"],
     build("boss@blocked.example", "hello", "Hello Bob.\n", None, "blocked"), "blocked")
send("198.51.100.7", "news@good.example", ["bob@example.net", "all-staff@example.net"],
     build("news@good.example", "our news", "Hello all.\n", None, "rcptblock"), "rcptblock")
gtube = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\n"
send("198.51.100.7", "gt@good.example", ["bob@example.net"],
     build("gt@good.example", "test", "Hello.\n" + gtube, None, "gtube"), "gtube")
PY
n=$(ls "$T/mqueue.in" | grep -c '^qf')
[ "$n" = 44 ] || fail "sendmail queued $n messages, not 44"

"$MQSCAND" -c "$T/mqscan.conf" --once -f 2> "$T/mqscand.log" || fail "mqscand --once"
smpair_flush_out || fail "outgoing queue run failed"
[ "$(ls "$T/mqueue.in" | grep -c '^qf')" = 0 ] || fail "the incoming queue is not empty"

"$SMPAIR_PYTHON" - "$T/sink" "$T/mqscand.log" <<'PY' || fail "delivery checks"
import email, email.policy, os, re, sys
sink, logfile = sys.argv[1], sys.argv[2]
log = open(logfile, errors="replace").read()
got = {}
for n in os.listdir(sink):
    if not n.endswith(".eml"):
        continue
    m = email.message_from_bytes(open(os.path.join(sink, n), "rb").read())
    env = open(os.path.join(sink, n[:-4] + ".env")).read()
    got.setdefault(m.get("X-Test-Label", "?"), []).append((m, env))
bad = []
flagged_ham = []
ham = got.get("ham", [])
if len(ham) != 20:
    bad.append("%d of 20 ham delivered" % len(ham))
for m, env in ham:
    spf = m.get_all("Received-SPF") or []
    flags = m.get_all("X-Spam-Flag") or []
    scl = int(m["X-mqscan-SCL"])
    if not spf or not spf[0].lower().startswith("pass"):
        bad.append("ham without Received-SPF: pass: %r" % spf)
    if flags or scl >= 5:
        print("note: ham flagged: scl=%d status=%s" % (scl, m["X-Spam-Status"]))
        flagged_ham.append(scl)
if len(flagged_ham) > 1:
    bad.append("%d of 20 ham flagged" % len(flagged_ham))
spam_ok = sum(1 for m, env in got.get("spam", []) if m.get("X-Spam-Flag") == "YES"
              and m["Subject"].startswith("[SPAM]"))
stopped = len(re.findall(r"verdict=quarantined direction=inbound scl=\d spam action=", log))
print("ham delivered clean: %d/20; spam flagged %d + stopped at the gateway %d (of 20 + 3 test cases)"
      % (len(ham), spam_ok, stopped))
if spam_ok + stopped - 3 < 16:
    bad.append("only %d of 20 spam flagged or stopped" % (spam_ok + stopped - 3))
for label in ("listed", "blocked", "gtube"):
    if label in got:
        bad.append("%s message delivered" % label)
rb = got.get("rcptblock", [])
if len(rb) != 1 or "all-staff" in rb[0][1] or "bob@example.net" not in rb[0][1]:
    bad.append("recipient_block: %r" % [e for _, e in rb])
for b in bad:
    print("FAIL:", b)
sys.exit(1 if bad else 0)
PY
ok "ham delivered with SPF pass and low SCL, spam flagged or stopped, blocked ones not delivered"

grep -q "spam from=<x@forged.example> scl=9 score=.* gateway .*SPF_FAIL=.*DNSBL_bl.mqscan.test=" "$T/mqscand.log" \
    || fail "no spam log line with SPF_FAIL and the DNSBL hit for the listed relay"
grep -Eq "verdict=quarantined direction=inbound scl=9 spam action=quarantine-only \(not scanned for viruses\)" "$T/mqscand.log" \
    || fail "the listed message was not stopped before the virus scan"
grep -q "spam from=<boss@blocked.example> scl=9 .*(sender_block: blocked.example)" "$T/mqscand.log" \
    || fail "sender_block not applied"
grep -q "to=<all-staff@example.net> removed: on recipient_block" "$T/mqscand.log" \
    || fail "recipient_block not logged"
grep -q "spam from=<gt@good.example> scl=9 .*SPAMD(1[0-9][0-9][0-9]" "$T/mqscand.log" \
    || fail "GTUBE not scored by spamd"
ok "log lines: rules and weights for the DNSBL/SPF case, sender_block, recipient_block, spamd"

# The quarantined EICAR spam was never virus-scanned: release must scan it.
qid=$("$MQSCAN_QUARANTINE" -c "$T/mqscan.conf" list 2>/dev/null | grep "x@forged.example" | awk '{print $1}' | head -1)
[ -n "$qid" ] || fail "the listed message is not in the quarantine list"
"$MQSCAN_QUARANTINE" -c "$T/mqscan.conf" show "$qid" | grep -q "not scanned for viruses" \
    || fail "the quarantine entry does not say it was never scanned"
if "$MQSCAN_QUARANTINE" -c "$T/mqscan.conf" release "$qid" > "$T/release.out" 2>&1; then
    fail "an unscanned message holding EICAR was released"
fi
grep -q "virus scan found" "$T/release.out" || { cat "$T/release.out"; fail "release refused for another reason"; }
ok "release of the never-scanned quarantined spam is refused: $(cut -c1-80 "$T/release.out")"

# spamd down: mail flows on the built-in score.
kill "$SPAMD_PID"; wait "$SPAMD_PID" 2> /dev/null; SPAMD_PID=
"$SMPAIR_PYTHON" - "$SMPAIR_PORT_IN" "$HAM" <<'PY' || fail "injection failed"
import os, smtplib, sys
name = sorted(n for n in os.listdir(sys.argv[2]) if "easy_ham" in n)[-21]
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), source_address=("198.51.100.7", 0))
data = open(os.path.join(sys.argv[2], name), "rb").read()
s.sendmail("late@good.example", ["bob@example.net"], data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
s.quit()
PY
"$MQSCAND" -c "$T/mqscan.conf" --once -f 2> "$T/mqscand2.log" || fail "mqscand --once without spamd"
grep -q "spam from=<late@good.example> .*notes=spamd: .*(built-in score only)" "$T/mqscand2.log" \
    || { cat "$T/mqscand2.log"; fail "spamd down not noted"; }
grep -q "from=<late@good.example> .*verdict=clean" "$T/mqscand2.log" || fail "mail stopped while spamd is down"
ok "spamd down: delivered on the built-in score, noted in the log"

echo "spam-e2e: $pass checks passed"
