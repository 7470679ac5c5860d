#!/bin/bash
# ops-e2e.sh - notifications and release through a real sendmail pair.
#
# Five messages arrive over SMTP while mqscand is stopped: three carry
# EICAR (two from internal senders, one from an outside sender), two are
# clean. One mqscand --once batch must produce exactly one postmaster report
# naming all three, one notice to each internal sender and none to the
# outside one. Then mqscan-quarantine releases one original, and it must
# reach the sink byte for byte as the incoming sendmail had queued it.
set -u
. "${MQ_SRCDIR:?}/lib.sh"
t_require_sendmail_pair
[ -x "${MQSCAN_QUARANTINE:-}" ] || t_fail "no mqscan-quarantine at ${MQSCAN_QUARANTINE:-}"
trap smpair_stop EXIT

T=$(t_tmpdir ops-e2e)
smpair_setup "$T" 26150 || t_fail "cannot configure sendmail"
smpair_start || t_fail "cannot start sendmail or the sink"
t_write_config "$T/mqscan.conf" "$T"
cat >> "$T/mqscan.conf" <<CONF
postmaster = "postmaster@example.org"
local_domains = { "example.org" }
internal_networks = { "127.0.0.0/8" }
batch_max_messages = 100
CONF

"$SMPAIR_PYTHON" - "$SMPAIR_PORT_IN" <<'PY' || t_fail "injection failed"
import email.mime.application, email.mime.multipart, email.mime.text, smtplib, sys
eicar = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
def msg(frm, to, subject, infected):
    m = email.mime.multipart.MIMEMultipart()
    m["From"], m["To"], m["Subject"] = frm, to, subject
    m.attach(email.mime.text.MIMEText("Hello.\n"))
    if infected:
        a = email.mime.application.MIMEApplication(eicar, Name="tool.com")
        a["Content-Disposition"] = 'attachment; filename="tool.com"'
        m.attach(a)
    return m.as_bytes().replace(b"\n", b"\r\n")
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
for frm, to, subj, bad in [("alice@example.org", "partner@example.net", "ops infected 1", True),
                           ("carol@example.org", "bob@example.org", "ops infected 2", True),
                           ("mallory@evil.example", "bob@example.org", "ops infected 3", True),
                           ("alice@example.org", "partner@example.net", "ops clean 1", False),
                           ("dave@example.org", "bob@example.org", "ops clean 2", False)]:
    s.sendmail(frm, [to], msg(frm, to, subj, bad))
s.quit()
PY
[ "$(ls "$T/mqueue.in" | grep -c '^qf')" = 5 ] || t_fail "sendmail did not queue 5 messages"

"$MQSCAND" -c "$T/mqscan.conf" --once -f 2> "$T/mqscand.log" || { cat "$T/mqscand.log"; t_fail "mqscand --once"; }
[ "$(grep -c 'postmaster report queued' "$T/mqscand.log")" = 1 ] || t_fail "not exactly one postmaster report"
smpair_flush_out || t_fail "outgoing queue run failed"

"$SMPAIR_PYTHON" - "$T/sink" <<'PY' || t_fail "notification checks"
import json, os, re, sys
sink = sys.argv[1]
mails = []
for n in os.listdir(sink):
    if n.endswith(".env"):
        env = json.load(open(os.path.join(sink, n)))
        raw = open(os.path.join(sink, n[:-4] + ".eml"), "rb").read()
        mails.append((env, raw))
def notes(to):
    return [raw for env, raw in mails if env["rcpt_tos"] == [to] and b"X-mqscan: notification" in raw]
bad = 0
reports = notes("postmaster@example.org")
if len(reports) != 1:
    print("postmaster reports: %d, expected 1" % len(reports)); bad += 1
else:
    import email, email.policy
    text = email.message_from_bytes(reports[0], policy=email.policy.default).get_content()
    for s in ("alice@example.org", "carol@example.org", "mallory@evil.example"):
        if s not in text:
            print("the report does not list %s" % s); bad += 1
    if "3 message(s)" not in text:
        print("the report does not count 3 messages"); bad += 1
    if "dave@example.org" in text:
        print("the report lists a clean message"); bad += 1
for who, want in (("alice@example.org", 1), ("carol@example.org", 1), ("mallory@evil.example", 0)):
    got = len(notes(who))
    if got != want:
        print("notices to %s: %d, expected %d" % (who, got, want)); bad += 1
for env, raw in mails:
    if env["mail_from"] not in ("", "<>") and b"X-mqscan: notification" in raw:
        print("a notification with a non-null envelope sender"); bad += 1
delivered = [raw for env, raw in mails if b"X-mqscan: notification" not in raw]
if len(delivered) != 5:
    print("%d messages delivered, expected 5" % len(delivered)); bad += 1
print("ops-e2e: %d mails at the sink, %d problems" % (len(mails), bad))
sys.exit(1 if bad else 0)
PY

# Release alice's original and compare what arrives with what was queued.
id=$("$MQSCAN_QUARANTINE" -c "$T/mqscan.conf" list --sender 'alice@*' | awk 'NR==1 {print $1}')
mq_quarantine_id_ok=$(printf '%s' "$id" | grep -cE '^[0-9]{8}-[A-Za-z0-9]+-[a-z0-9]{6}$')
[ "$mq_quarantine_id_ok" = 1 ] || t_fail "no quarantine entry for alice (got '$id')"
entry=$(find "$T/quarantine" -mindepth 2 -maxdepth 2 -type d -name "${id#*-}")
[ -d "$entry" ] || t_fail "entry $id not found on disk"
rm -rf "$T/sink"; mkdir -p "$T/sink"
"$MQSCAN_QUARANTINE" -c "$T/mqscan.conf" release "$id" || t_fail "release $id"
smpair_flush_out || t_fail "outgoing queue run after release failed"
"$SMPAIR_PYTHON" - "$T/sink" "$entry" <<'PY' || t_fail "released message differs"
import json, os, re, sys
sink, entry = sys.argv[1], sys.argv[2]
got = [n for n in os.listdir(sink) if n.endswith(".eml")]
if len(got) != 1:
    print("%d messages at the sink after release, expected 1" % len(got)); sys.exit(1)
raw = open(os.path.join(sink, got[0]), "rb").read()
env = json.load(open(os.path.join(sink, got[0][:-4] + ".env")))
df = open(os.path.join(entry, "df"), "rb").read().replace(b"\n", b"\r\n")
qf = open(os.path.join(entry, "qf"), "rb").read()
head, body = raw.split(b"\r\n\r\n", 1)
ok = body == df
ok &= env["mail_from"] == "alice@example.org" and env["rcpt_tos"] == ["partner@example.net"]
# every header the incoming sendmail queued (but sendmail's own Return-Path)
# arrives unchanged, in order
sys.path.insert(0, os.environ["MQ_SRCDIR"])
from e2e_check import qf_headers
want = [h.replace(b"\n", b"\r\n") for h in re.split(rb"\n(?![ \t])", qf_headers(qf).rstrip(b"\n"))]
pos = 0
for h in want:
    i = raw.find(h, pos)
    if i < 0:
        print("header missing or reordered: %r" % h[:60]); ok = False
    else:
        pos = i + len(h)
print("release: body %s, envelope %s" % ("identical" if body == df else "DIFFERENT",
      "intact" if env["rcpt_tos"] == ["partner@example.net"] else env))
sys.exit(0 if ok else 1)
PY
echo PASS
