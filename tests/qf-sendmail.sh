#!/bin/bash
# qf-sendmail.sh - the qf parser and writer against real sendmail files.
#
# The incoming sendmail queues messages with hard envelopes: 150 recipients,
# a 250-character address, a null sender, DSN parameters (NOTIFY, ORCPT,
# ENVID, RET), raw 8-bit and folded headers. qf-roundtrip checks that every
# qf it wrote parses and formats back byte for byte; then mqscand moves them
# to the outgoing queue and the outgoing sendmail must deliver each one to
# every recipient with the envelope and headers intact.
set -u
. "${MQ_SRCDIR:?}/lib.sh"
t_require_sendmail_pair
roundtrip=${MQ_QF_ROUNDTRIP:-$MQ_BUILDDIR/qf-roundtrip}
[ -x "$roundtrip" ] || t_fail "qf-roundtrip not built"

trap smpair_stop EXIT
T=$(t_tmpdir qf-sendmail)
smpair_setup "$T" 26130 || t_fail "cannot configure sendmail"
smpair_start || t_fail "cannot start sendmail or the sink"
t_write_config "$T/mqscan.conf" "$T"

"$SMPAIR_PYTHON" - "$SMPAIR_PORT_IN" "$T/cases.json" <<'PY' || t_fail "injection failed"
import json, smtplib, sys
port, out = int(sys.argv[1]), sys.argv[2]
long_local = "a" * 238
cases = [
    {"from": "many@example.com", "to": ["r%03d@example.net" % i for i in range(150)]},
    {"from": "long@example.com", "to": [long_local + "@example.org", "x@example.net"]},
    {"from": "", "to": ["bounce-target@example.net"], "id": "null"},
    {"from": "dsn@example.com", "to": ["d1@example.net", "d2@example.org"],
     "mail_options": ["RET=HDRS", "ENVID=mqscan-envid-1"],
     "rcpt_options": ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;orig@example.org"]},
    {"from": "eight@example.com", "to": ["e@example.net"],
     "headers": "Subject: caf\xc3\xa9 cr\xc3\xa8me br\xc3\xbbl\xc3\xa9e\r\n"
                "X-Folded: first line\r\n\tsecond line\r\n  third line\r\n"
                "X-Latin1: \xe9t\xe9\r\n"},
]
smtp = smtplib.SMTP("127.0.0.1", port)
smtp.ehlo()
for k, c in enumerate(cases):
    head = c.get("headers", "Subject: case %d\r\n" % k)
    data = ("From: case-%d <x@example.com>\r\nTo: someone@example.net\r\nX-Case: %d\r\n%s\r\n"
            "Body of case %d.\r\n" % (k, k, head, k)).encode("latin-1")
    smtp.mail(c["from"], c.get("mail_options", []) + ["BODY=8BITMIME"])
    for r in c["to"]:
        code, msg = smtp.rcpt(r, c.get("rcpt_options", []))
        assert code == 250, (r, code, msg)
    code, msg = smtp.data(data)
    assert code == 250, (code, msg)
    c["data"] = data.decode("latin-1")
smtp.quit()
json.dump(cases, open(out, "w"))
PY

"$roundtrip" "$T/mqueue.in" || t_fail "qf round trip on sendmail's own files"
grep -q '^Z' "$T"/mqueue.in/qf* || t_fail "no ENVID (Z) record in any qf: the DSN case did not reach the queue"

"$MQSCAND" -c "$T/mqscan.conf" --once -f 2> "$T/mqscand.log" || { cat "$T/mqscand.log"; t_fail "mqscand --once"; }
"$roundtrip" "$T/mqueue.out" || t_fail "qf round trip on the files mqscand wrote"
grep -q '^Zmqscan-envid-1$' "$T"/mqueue.out/qf* || t_fail "ENVID lost in the outgoing qf"
grep -q '^R[A-Z]*S[A-Z]*:<d1@example.net>$' "$T"/mqueue.out/qf* ||
    t_fail "NOTIFY flags lost in the outgoing qf"
smpair_flush_out || t_fail "outgoing queue run failed"

"$SMPAIR_PYTHON" - "$T/cases.json" "$T/sink" <<'PY' || t_fail "delivery check"
import json, os, sys
cases = json.load(open(sys.argv[1]))
sink = sys.argv[2]
got, dsns = {}, []
for name in os.listdir(sink):
    if name.endswith(".env"):
        env = json.load(open(os.path.join(sink, name)))
        env["mail_from"] = "" if env["mail_from"] == "<>" else env["mail_from"]
        raw = open(os.path.join(sink, name[:-4] + ".eml"), "rb").read()
        if b"multipart/report" in raw.split(b"\r\n\r\n", 1)[0]:
            dsns.append((env, raw))   # a delivery status notification
            continue
        case = int(raw.split(b"X-Case: ", 1)[1].split(b"\r\n", 1)[0])
        got.setdefault(case, []).append((env, raw))
bad = 0
# NOTIFY=SUCCESS survived mqscan: the outgoing sendmail, relaying to a sink
# without DSN support, reports "relayed" to the DSN case's sender, once.
if [env["rcpt_tos"] for env, _ in dsns] != [["dsn@example.com"]] or \
        b"mqscan-envid-1" not in dsns[0][1]:
    print("expected one relayed DSN for the DSN case carrying its ENVID; got %d" % len(dsns))
    bad += 1
for k, c in enumerate(cases):
    deliveries = got.get(k, [])
    rcpts = sorted(r for env, _ in deliveries for r in env["rcpt_tos"])
    if rcpts != sorted(c["to"]):
        print("case %d: delivered to %d of %d recipients" % (k, len(rcpts), len(c["to"])))
        bad += 1
    for env, raw in deliveries:
        if env["mail_from"] != c["from"]:
            print("case %d: sender %r, expected %r" % (k, env["mail_from"], c["from"]))
            bad += 1
        sent = c["data"].encode("latin-1")
        head, body = sent.split(b"\r\n\r\n", 1)
        if not raw.endswith(b"\r\n\r\n" + body):
            print("case %d: body changed" % k)
            bad += 1
        for line in head.split(b"\r\n"):
            if line.startswith((b"Subject", b"X-Latin1", b"X-Folded", b"\t", b"  ")) and line not in raw:
                print("case %d: header line %r changed" % (k, line))
                bad += 1
print("qf-sendmail: %d cases, %d recipients delivered, %d problems"
      % (len(cases), sum(len(c["to"]) for c in cases), bad))
sys.exit(1 if bad else 0)
PY
echo PASS
