#!/bin/bash
# run-demo.sh - mqscan between two real sendmail instances, on loopback.
#
# Starts an incoming sendmail (queue only) and a sink on 127.0.0.1, runs
# mqscand as a daemon with the demo's own one-line signature file (EICAR),
# sends the sample messages in mail/ plus one carrying the EICAR test file,
# lets the outgoing sendmail deliver, and prints where every message went.
# Everything lives in $DEMO_DIR; every process started here is stopped.
#
# usage: run-demo.sh   (from "make demo"; needs root for sendmail's
#                       private host name, see tests/smpair.sh)
set -u
here=$(cd "$(dirname "$0")" && pwd)
srcdir=${DEMO_SRCDIR:-$here}
confdir=$(cd "$srcdir/../conf" && pwd -P)
MQSCAND=${MQSCAND:-$here/../src/mqscand}
DEMO_DIR=${DEMO_DIR:-$PWD/tmp-demo}
. "$srcdir/../tests/smpair.sh"

say() { printf '%s\n' "$*"; }
die() { say "demo: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (sendmail needs a private host name; see README)"
[ -x "$MQSCAND" ] || die "mqscand not built: run make first"
[ -x "$SMPAIR_SENDMAIL" ] || die "sendmail not installed: run scripts/install-deps.sh"

MQPID=
cleanup() {
    [ -n "$MQPID" ] && kill "$MQPID" 2>/dev/null && wait "$MQPID" 2>/dev/null
    smpair_stop
}
trap cleanup EXIT

rm -rf "$DEMO_DIR"
say "== mqscan demo =="
say "1. Two sendmail instances in $DEMO_DIR:"
smpair_setup "$DEMO_DIR" 25250 || die "cannot configure sendmail"
smpair_start || die "cannot start sendmail or the sink"
say "   incoming sendmail: 127.0.0.1:$SMPAIR_PORT_IN, DeliveryMode=queueonly, queue $DEMO_DIR/mqueue.in"
say "   outgoing sendmail: queue $DEMO_DIR/mqueue.out, delivers to a sink on 127.0.0.1:$SMPAIR_PORT_SINK"

cat > "$DEMO_DIR/mqscan.conf" <<CONF
# mqscan configuration for the demo (see conf/mqscan.conf for every option)
incoming_queue_dir = "$DEMO_DIR/mqueue.in"
outgoing_queue_dir = "$DEMO_DIR/mqueue.out"
quarantine_dir = "$DEMO_DIR/quarantine"
hold_dir = "$DEMO_DIR/hold"
state_dir = "$DEMO_DIR/state"
scan_tmp_dir = "$DEMO_DIR/scantmp"
pid_file = "$DEMO_DIR/mqscand.pid"
clamav_database_dir = "$srcdir/sigs"
filename_rules = "$confdir/filename.rules"
filetype_rules = "$confdir/filetype.rules"
template_dir = "$confdir/templates"
postmaster = "postmaster@example.org"
local_domains = { "example.net" }
# The demo's mail comes from 127.0.0.1; outside these networks it is inbound
# mail, under the strictest policy.
internal_networks = { "192.0.2.0/24" }
batch_max_wait = 0.2
# The demo's sendmail pair runs as root, so mqscand stays root too (a real
# gateway runs it as user mqscan; see conf/sendmail/README).
user = ""
CONF
say "2. mqscand --lint:"
"$MQSCAND" -c "$DEMO_DIR/mqscan.conf" --lint | sed 's/^/   /' || die "configuration check failed"
"$MQSCAND" -c "$DEMO_DIR/mqscan.conf" -f 2> "$DEMO_DIR/mqscand.log" &
MQPID=$!
say "   mqscand started (pid $MQPID), log in $DEMO_DIR/mqscand.log"

say "3. Sending the sample messages over SMTP:"
"$SMPAIR_PYTHON" - "$SMPAIR_PORT_IN" "$srcdir/mail" <<'PY' || die "could not send the samples"
import email.mime.application, email.mime.multipart, email.mime.text
import os, re, smtplib, sys
port, maildir = int(sys.argv[1]), sys.argv[2]
msgs = []
for name in sorted(os.listdir(maildir)):
    if name.endswith(".eml"):
        msgs.append((name, open(os.path.join(maildir, name), "rb").read()))
# The EICAR test file, assembled here so that no file in the tree holds it.
eicar = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
m = email.mime.multipart.MIMEMultipart()
m["From"], m["To"] = "Dave Leroy <dave@example.net>", "bob@example.net"
m["Subject"], m["Message-ID"] = "Invoice 2026-117", "<demo-03@example.net>"
m.attach(email.mime.text.MIMEText("Please pay the attached invoice today.\n"))
a = email.mime.application.MIMEApplication(eicar, Name="invoice.com")
a["Content-Disposition"] = 'attachment; filename="invoice.com"'
m.attach(a)
msgs.insert(2, ("03-invoice (EICAR attachment)", m.as_bytes()))
smtp = smtplib.SMTP("127.0.0.1", port)
smtp.ehlo()
for name, raw in msgs:
    sender = re.search(rb"^From:.*?<?([\w.+-]+@[\w.-]+)>?\s*$", raw, re.M).group(1).decode()
    data = re.sub(rb"\r\n|\r|\n", b"\r\n", raw)
    smtp.sendmail(sender, ["bob@example.net"], data)
    print("   sent %-32s from <%s>" % (name, sender))
smtp.quit()
PY

say "4. Waiting for mqscand to take them out of the incoming queue..."
for i in $(seq 1 100); do
    ls "$DEMO_DIR/mqueue.in" | grep -q '^qf' || break
    sleep 0.1
done
ls "$DEMO_DIR/mqueue.in" | grep -q '^qf' && die "messages are still in the incoming queue; see $DEMO_DIR/mqscand.log"
say "5. The outgoing sendmail runs its queue (sendmail -q)..."
smpair_flush_out || die "the outgoing queue run failed; see $DEMO_DIR/out-run.log"
kill "$MQPID"; wait "$MQPID"; MQPID=

say ""
say "== What mqscand logged (syslog, mail facility) =="
grep -E 'verdict=|started' "$DEMO_DIR/mqscand.log" | sed 's/^mqscand: info: /   /'
say ""
say "== Where each message went =="
"$SMPAIR_PYTHON" - "$DEMO_DIR" <<'PY'
import email, email.policy, json, os, re, sys
d = sys.argv[1]
sink = os.path.join(d, "sink")
for name in sorted(os.listdir(sink), key=lambda n: int(n.split(".")[0]) if n[0].isdigit() else 0):
    if not name.endswith(".env"):
        continue
    env = json.load(open(os.path.join(sink, name)))
    raw = open(os.path.join(sink, name[:-4] + ".eml"), "rb").read().decode("utf-8", "replace")
    head = raw.split("\r\n\r\n", 1)[0]
    subj = re.search(r"^Subject: (.*)$", head, re.M | re.I)
    stamp = re.findall(r"^X-mqscan: (.*)$", head, re.M | re.I)
    sender = env["mail_from"].strip("<>")
    print("   %-22s from <%s> -> delivered to %s (sink/%s)"
          % (subj.group(1)[:22] if subj else "?", sender, ",".join(env["rcpt_tos"]),
             name[:-4] + ".eml"))
    print("   %22s X-mqscan: %s" % ("", " | ".join(stamp)))
    msg = email.message_from_bytes(raw.encode("utf-8", "surrogateescape"), policy=email.policy.default)
    if "X-mqscan: notification" in head:
        print("   %22s the postmaster's report of the batch (first lines):" % "")
        for line in msg.get_content().split("\n")[:16]:
            print("   %22s | %s" % ("", line))
        continue
    for part in msg.walk():
        if part.get_content_type() != "text/plain":
            continue
        text = part.get_content()
        for marker, what in (("mqscan on the mail gateway", "notice added at the top of the text"),
                             ("The attachment \"", "an attachment was replaced by")):
            if text.startswith(marker):
                print("   %22s %s:" % ("", what))
                shown = text
                if what.startswith("notice"):
                    # the notice ends with the line naming the queue ID
                    lines = text.split("\n")
                    end = next((i for i, l in enumerate(lines) if "queue ID" in l), len(lines) - 1)
                    shown = "\n".join(lines[:end + 1])
                for line in shown.rstrip("\n").split("\n"):
                    print("   %22s | %s" % ("", line))
q = os.path.join(d, "quarantine")
for day in sorted(os.listdir(q)):
    if day == "tmp":
        continue
    for entry in sorted(os.listdir(os.path.join(q, day))):
        meta = open(os.path.join(q, day, entry, "meta")).read()
        finding = re.findall(r"^finding: (.*)$", meta, re.M)
        print("   quarantine %s/%s: original kept (%s)" % (day, entry, "; ".join(finding)))
held = [f for f in os.listdir(os.path.join(d, "hold")) if f.endswith(".reason")]
print("   hold area: %d message(s); incoming queue: %d left"
      % (len(held), len([f for f in os.listdir(os.path.join(d, "mqueue.in")) if f.startswith("qf")])))
PY
say ""
say "Files: $DEMO_DIR (queues, quarantine/, sink/, mqscand.log). All demo processes are stopped."
