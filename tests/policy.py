#!/usr/bin/python3
"""policy.py - build the content-policy test set, and check what mqscand did.

usage: policy.py make QUEUEDIR CASES.json SHAREDDIR [--no-ham | --only-ham]
       policy.py check CASES.json LOG OUTDIR QUARANTINE [--expect FILE.json]

"make" writes sendmail version 8 queue files (qf/df pairs, as the incoming
sendmail writes them) for every case into QUEUEDIR, one copy per direction:
the relay recorded in the qf ($_ macro) and the envelope decide whether
mqscand sees the message as inbound, outbound or internal. Cases:
  - each file of /usr/share/clamav-testfiles attached (base64), inside a zip,
    and inside an attached message/rfc822: infected
  - a harmless file under every banned extension, double extensions, runs
    of spaces, a CLSID extension, a trailing dot: banned by name
  - a Windows executable renamed to .jpg, and inside a zip by name and
    renamed: banned
  - an encrypted zip: encrypted;  archives nested deeper than the limit:
    limits;  a message/partial fragment: unscannable
  - an attachment matching a mass-mailer signature (generated at test time):
    deleted whatever the policy
  - every message of corpus/ham: clean, no attachment removed
"check" reads mqscand's log lines and the outgoing queue and quarantine and
compares each message's outcome with what the default policy (or --expect)
says. Prints a summary; exit 0 if everything matched.
"""
import email.mime.application
import email.mime.message
import email.mime.multipart
import email.mime.text
import email.policy
import io
import json
import os
import re
import struct
import sys
import time
import zipfile
import zlib

TESTFILES = "/usr/share/clamav-testfiles"
WORM_MARKER = b"mqscan-policy-test: mass mailer body 7f3a9c"
DIRECTIONS = {
    # relay recorded by sendmail, envelope sender, recipients
    "inbound": ("mx.example.net [203.0.113.25]", "sender-{n}@example.net", ["user-{n}@example.org"]),
    "outbound": ("pc12.example.org [10.1.2.3]", "user-{n}@example.org", ["partner-{n}@example.net"]),
    "internal": ("pc12.example.org [10.1.2.3]", "user-{n}@example.org", ["colleague-{n}@example.org"]),
}
# What the default policy does with each finding, per direction.
DEFAULT_POLICY = {
    "inbound": {"infected": "replace", "banned": "replace", "limits": "replace",
                "encrypted": "replace", "unscannable": "replace"},
    "outbound": {"infected": "replace", "banned": "deliver", "limits": "replace",
                 "encrypted": "deliver", "unscannable": "replace"},
    "internal": {"infected": "replace", "banned": "deliver", "limits": "replace",
                 "encrypted": "deliver", "unscannable": "replace"},
}
SEVERITY = ["deliver", "replace", "quarantine-only", "delete"]
OUTCOME = {"deliver": ("clean",), "replace": ("cleaned",), "quarantine-only": ("quarantined",),
           "delete": ("deleted",)}

BANNED_EXTENSIONS = ["exe", "com", "cmd", "bat", "pif", "scr", "vbs", "vbe", "js", "jse", "wsf",
                     "wsh", "hta", "lnk", "cpl", "reg", "msi", "msp", "jar", "ps1", "scf", "inf",
                     "chm", "EXE", "Scr"]
BANNED_NAMES = ["invoice.pdf.exe", "readme.txt.vbs", "photo.jpg.scr", "report.doc          .exe",
                "setup.{3050F4D8-98B5-11CF-BB82-00AA00BDCE0B}", "statement.pdf.", "list.xls.bat"]


def minimal_pe():
    """A small but well-formed PE32 header (libmagic: "PE32 executable")."""
    dos = bytearray(128)
    dos[0:2] = b"MZ"
    struct.pack_into("<I", dos, 0x3C, 128)
    coff = struct.pack("<HHIIIHH", 0x14C, 1, 0, 0, 0, 224, 0x0102)
    opt = bytearray(224)
    struct.pack_into("<H", opt, 0, 0x10B)           # PE32 magic
    struct.pack_into("<I", opt, 16, 0x1000)         # entry point
    struct.pack_into("<I", opt, 28, 0x400000)       # image base
    struct.pack_into("<II", opt, 32, 0x1000, 0x200)  # section/file alignment
    struct.pack_into("<H", opt, 68, 3)              # subsystem: console
    struct.pack_into("<I", opt, 92, 16)             # number of rva and sizes
    section = b".text\0\0\0" + struct.pack("<IIIIIIHHI", 0x10, 0x1000, 0x200, 0x200, 0, 0, 0, 0,
                                           0x60000020)
    head = bytes(dos) + b"PE\0\0" + coff + bytes(opt) + section
    return head + bytes(0x200 - len(head)) + b"\xc3" + bytes(0x1FF)


def make_zip(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


def encrypted_zip(name, data):
    """A zip whose one member is ZipCrypto-encrypted (flag bit 0), as
    written by "zip -P". The encryption itself is the classic PKWARE one."""
    keys = [0x12345678, 0x23456789, 0x34567890]

    def crc(c, b):
        return (zlib.crc32(bytes([b]), c ^ 0xFFFFFFFF) ^ 0xFFFFFFFF) & 0xFFFFFFFF

    def update(b):
        keys[0] = crc(keys[0], b)
        keys[1] = ((keys[1] + (keys[0] & 0xFF)) * 134775813 + 1) & 0xFFFFFFFF
        keys[2] = crc(keys[2], (keys[1] >> 24) & 0xFF)

    for ch in b"secret":
        update(ch)

    def enc(plain):
        out = bytearray()
        for b in plain:
            t = (keys[2] | 2) & 0xFFFF
            k = ((t * (t ^ 1)) >> 8) & 0xFF
            out.append(b ^ k)
            update(b)
        return bytes(out)

    crc32 = zlib.crc32(data) & 0xFFFFFFFF
    header = bytes(11) + bytes([(crc32 >> 24) & 0xFF])
    body = enc(header) + enc(data)
    fname = name.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 1, 0, 0, 0, crc32, len(body), len(data),
                        len(fname), 0) + fname + body
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 1, 0, 0, 0, crc32, len(body),
                          len(data), len(fname), 0, 0, 0, 0, 0, 0) + fname
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local), 0)
    return local + central + end


def nested_zip(depth, inner):
    data = inner
    for i in range(depth):
        data = make_zip([("level%d.zip" % i if i else "note.txt", data)])
    return data


def with_attachment(subject, name, data, ctype=("application", "octet-stream")):
    msg = email.mime.multipart.MIMEMultipart()
    msg["Subject"] = subject
    msg["Date"] = "Tue, 24 Nov 2026 10:00:00 +0000"
    msg.attach(email.mime.text.MIMEText("Please see the attachment.\n"))
    part = email.mime.application.MIMEApplication(data, _subtype=ctype[1], Name=name)
    part["Content-Disposition"] = 'attachment; filename="%s"' % name
    msg.attach(part)
    return msg.as_bytes(policy=email.policy.compat32)


def with_nested(subject, name, data):
    inner = email.message_from_bytes(with_attachment("inner: " + name, name, data))
    msg = email.mime.multipart.MIMEMultipart()
    msg["Subject"] = subject
    msg.attach(email.mime.text.MIMEText("A forwarded message is attached.\n"))
    msg.attach(email.mime.message.MIMEMessage(inner))
    return msg.as_bytes(policy=email.policy.compat32)


def raw_attachment(subject, disposition_params, data):
    """A message whose attachment's Content-Disposition parameters are
    written by hand (RFC 2047 and RFC 2231 encodings, hostile names)."""
    import base64
    b64 = base64.encodebytes(data)
    return (b"Subject: " + subject.encode() + b"\nMIME-Version: 1.0\n"
            b"Content-Type: multipart/mixed; boundary=\"b-42\"\n\n"
            b"--b-42\nContent-Type: text/plain\n\nSee attached.\n\n"
            b"--b-42\nContent-Type: application/octet-stream\n"
            b"Content-Disposition: attachment;" + disposition_params + b"\n"
            b"Content-Transfer-Encoding: base64\n\n" + b64 + b"\n--b-42--\n")


def rfc2231_continuations(value, chunk):
    """filename*0*=utf-8''...; filename*1*=...: value percent-encoded."""
    from urllib.parse import quote
    enc = quote(value, safe="")
    parts = [enc[i:i + chunk] for i in range(0, len(enc), chunk)]
    out = []
    for i, p in enumerate(parts):
        out.append(("\n filename*%d*=%s%s;" % (i, "utf-8''" if i == 0 else "", p)).encode())
    return b"".join(out).rstrip(b";")


# Names an attacker would like to see used as paths or to break a log or
# the quarantine metadata with; the content is EICAR, so each is quarantined.
HOSTILE_NAMES = ["../../etc/passwd", "..\\..\\x", "/etc/shadow", "line\nbreak.txt",
                 "crlf\r\nreason: clean\r\nend.txt", "nul\x00after.exe", "\u202etxt.exe",
                 "a" * 200000 + ".txt"]


def partial():
    return (b"Subject: fragment 1 of 2\nMIME-Version: 1.0\n"
            b"Content-Type: message/partial; id=\"frag-7@example.net\"; number=1; total=2\n\n"
            b"Subject: the real one\nContent-Type: application/octet-stream\n\nAAAA\n")


def eicar():
    return b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def cases(shared):
    """(label, raw message, required finding kinds, allowed extra kinds)"""
    out = []
    for f in sorted(os.listdir(TESTFILES)):
        data = open(os.path.join(TESTFILES, f), "rb").read()
        # clam_cache_emax.tgz holds clam.exe next to a branch nested right at
        # the recursion limit: which an engine reaches first depends on its
        # limits, and either verdict is right (never clean).
        emax = "emax" in f
        kind = "infected-or-limits" if emax else "infected"
        # Test files that are executables, or archives holding clam.exe, are
        # also banned by type or member name; both findings are right.
        extra = {"banned", "infected", "limits"} if emax else {"banned"}
        out.append(("attached " + f, with_attachment("test file " + f, f + ".bin", data),
                    {kind}, extra))
        out.append(("zipped " + f, with_attachment("zipped " + f, f + ".zip",
                                                   make_zip([(f + ".dat", data)])), {kind}, extra))
        out.append(("nested " + f, with_nested("nested " + f, f + ".bin", data), {kind}, extra))
    out.append(("attached eicar", with_attachment("eicar", "eicar.txt", eicar()), {"infected"},
                set()))
    for ext in BANNED_EXTENSIONS:
        out.append(("name ." + ext, with_attachment("banned ." + ext, "file." + ext,
                                                   b"harmless text\n"), {"banned"}, set()))
    for name in BANNED_NAMES:
        out.append(("name " + name, with_attachment("banned " + name, name, b"harmless text\n"),
                    {"banned"}, set()))
    pe = minimal_pe()
    out.append(("renamed executable", with_attachment("holiday", "holiday.jpg", pe,
                                                      ("image", "jpeg")), {"banned"}, set()))
    out.append(("executable in zip", with_attachment("tools", "tools.zip",
                                                     make_zip([("docs/readme.txt", b"hi\n"),
                                                               ("setup.exe", b"harmless\n")])),
                {"banned"}, set()))
    out.append(("renamed executable in zip",
                with_attachment("pictures", "pictures.zip",
                                make_zip([("img/beach.jpg", pe)])), {"banned"}, set()))
    out.append(("encrypted zip", with_attachment("secret", "secret.zip",
                                                 encrypted_zip("plans.txt", b"the plans\n" * 50)),
                {"encrypted"}, set()))
    out.append(("nested archives", with_attachment("deep", "deep.zip",
                                                   nested_zip(20, b"deep inside\n")), {"limits"},
                set()))
    out.append(("message/partial", partial(), {"unscannable"}, set()))
    # Names decoded before they are matched: RFC 2047 and RFC 2231
    # (continuations, charset) spellings of banned names.
    import base64
    out.append(("RFC 2047 name", raw_attachment(
        "encoded name", b' filename="=?utf-8?B?' +
        base64.b64encode("facture é.pdf.exe".encode()) + b'?="', b"harmless\n"),
        {"banned"}, set()))
    out.append(("RFC 2231 name", raw_attachment(
        "continued name", rfc2231_continuations("résumé.pdf.exe", 9), b"harmless\n"),
        {"banned"}, set()))
    # A NUL byte hides the real extension from a C-string decoder.
    out.append(("NUL in name", raw_attachment(
        "nul name", rfc2231_continuations("report.pdf\x00.exe", 5000), b"harmless\n"),
        {"banned"}, set()))
    for i, name in enumerate(HOSTILE_NAMES):
        out.append(("hostile name %d" % i, raw_attachment(
            "hostile %d" % i, rfc2231_continuations(name, 5000), eicar()),
            {"infected"}, {"banned"}))
    out.append(("mass mailer", with_attachment("hello", "document.txt", WORM_MARKER * 3),
                {"infected"}, set()))
    for f in sorted(os.listdir(os.path.join(shared, "corpus", "ham"))):
        out.append(("ham " + f, open(os.path.join(shared, "corpus", "ham", f), "rb").read(),
                    set(), set()))
    return out


def _pe_like(data):
    return data[:2] == b"MZ"


def qf_for(raw, relay, sender, rcpts, now):
    """The qf and df sendmail writes for raw (headers split off into H
    records, the body in the df with LF line ends)."""
    raw = re.sub(rb"\r\n?", b"\n", raw)
    m = re.search(rb"\n\n", raw)
    head, body = (raw[: m.start() + 1], raw[m.end():]) if m else (raw, b"")
    if not head.endswith(b"\n"):
        head += b"\n"
    lines = [b"V8", b"T%d" % now, b"K0", b"N0", b"P30000", b"B8BITMIME", b"Fbs",
             b"$_" + relay.encode(), b"$rESMTP", b"$smx.example.net",
             b"S<" + sender.encode() + b">"]
    for r in rcpts:
        lines += [b"rRFC822; " + r.encode(), b"RPFD:<" + r.encode() + b">"]
    lines.append(b"H?P?Return-Path: <\x81g>")
    lines.append(b"H??Received: from mx.example.net (" + relay.encode() + b")\n\tby mqscan.test "
                 b"(8.17.1.9/8.17.1.9) with ESMTP id TEST; Tue, 24 Nov 2026 10:00:00 GMT")
    for line in head.rstrip(b"\n").split(b"\n"):
        if line[:1] in (b" ", b"\t") and len(lines) > 0 and lines[-1].startswith(b"H"):
            lines[-1] += b"\n" + line
        elif b":" in line and not line.startswith((b" ", b"\t")):
            lines.append(b"H??" + line)
    lines.append(b".")
    return b"\n".join(lines) + b"\n", body


def cmd_make(queuedir, casefile, shared, which):
    now = int(time.time())
    index = []
    n = 0
    for label, raw, kinds, extra in cases(shared):
        if (which == "--no-ham" and label.startswith("ham ")) or \
                (which == "--only-ham" and not label.startswith("ham ")):
            continue
        for direction, (relay, sender, rcpts) in DIRECTIONS.items():
            if label.startswith("ham ") and direction != "inbound":
                continue   # the clean corpus once, where the policy is strictest
            n += 1
            qid = "T%07d" % n
            qf, df = qf_for(raw, relay, sender.format(n=n), [r.format(n=n) for r in rcpts], now)
            for name, data in (("df" + qid, df), ("qf" + qid, qf)):
                with open(os.path.join(queuedir, name), "wb") as f:
                    f.write(data)
                os.chmod(os.path.join(queuedir, name), 0o600)
            index.append({"id": qid, "label": label, "direction": direction,
                          "kinds": sorted(kinds), "extra": sorted(extra),
                          "worm": label == "mass mailer"})
    json.dump(index, open(casefile, "w"), indent=0)
    print("policy: %d queue entries written" % n)


LOG_RE = re.compile(r"(T\d{7}): from=<[^>]*> size=\d+ nrcpt=\d+ verdict=(\w+) "
                    r"direction=(\w+)(?: scl=\d+)?(?: action=([\w-]+))?(?: findings: (.*?))?"
                    r"(?: quarantine=(\S+))?(?: out=\S+(?: \(already there\))?)? time=")


def cmd_check(casefile, logfile, outdir, quarantine, expect):
    policy = DEFAULT_POLICY
    if expect:
        policy = json.load(open(expect))
    index = json.load(open(casefile))
    seen = {}
    for line in open(logfile, errors="replace"):
        m = LOG_RE.search(line)
        if m:
            seen[m.group(1)] = m
    failures = []
    stats = {}
    ham_clean = ham_total = 0
    for case in index:
        qid, label, direction = case["id"], case["label"], case["direction"]
        m = seen.get(qid)
        if m is None:
            failures.append("%s (%s, %s): no log line" % (qid, label, direction))
            continue
        verdict, logged_dir, action, findings = m.group(2), m.group(3), m.group(4), m.group(5) or ""
        found = set(re.findall(r": (infected|banned|limits|encrypted|unscannable) ", findings))
        want = set(case["kinds"]) - {"infected-or-limits"}
        problems = []
        if "infected-or-limits" in case["kinds"] and not found & {"infected", "limits"}:
            problems.append("findings %s, expected infected or limits" % sorted(found))
        if logged_dir != direction:
            problems.append("direction %s" % logged_dir)
        if not want <= found or not found <= want | set(case["extra"]):
            problems.append("findings %s, expected %s%s" % (
                sorted(found), sorted(want),
                " (and maybe %s)" % sorted(case["extra"]) if case["extra"] else ""))
        # The action is the policy's for what was found (the most severe).
        if case["worm"]:
            want_action = "delete"
        elif found:
            want_action = max((policy[direction][k] for k in found), key=SEVERITY.index)
        else:
            want_action = "deliver"
        want_verdict = OUTCOME[want_action][0]
        if want_action == "deliver" and found:
            want_verdict = "passed"
        if want_action != "deliver" or found:
            if action != want_action:
                problems.append("action %s, expected %s" % (action, want_action))
        if verdict != want_verdict:
            problems.append("verdict %s, expected %s" % (verdict, want_verdict))
        qf = os.path.join(outdir, "qf" + qid)
        delivered = os.path.exists(qf)
        if delivered != (want_action in ("deliver", "replace")):
            problems.append("delivered" if delivered else "not delivered")
        if want_action != "deliver" and not m.group(6):
            problems.append("nothing in quarantine")
        if want_action == "replace" and delivered:
            df = open(os.path.join(outdir, "df" + qid), "rb").read()
            if b"removed" not in df and b"retir" not in df:
                problems.append("no notice in the delivered copy")
        if label.startswith("ham "):
            ham_total += 1
            ham_clean += verdict == "clean" and not found
        if problems:
            failures.append("%s (%s, %s): %s" % (qid, label, direction, "; ".join(problems)))
        key = "%s/%s" % (direction, want_action)
        stats[key] = stats.get(key, 0) + 1
    # Whatever the names in the messages, the quarantine holds only its own
    # generated names, and every meta line is one well-formed field.
    entries = 0
    for day in os.listdir(quarantine):
        if day == "tmp":
            if os.listdir(os.path.join(quarantine, day)):
                failures.append("quarantine/tmp is not empty")
            continue
        if not re.fullmatch(r"\d{8}", day):
            failures.append("quarantine: unexpected %r" % day)
            continue
        for entry in os.listdir(os.path.join(quarantine, day)):
            entries += 1
            path = os.path.join(quarantine, day, entry)
            if not re.fullmatch(r"T\d{7}-[a-z0-9]{6}", entry) or not os.path.isdir(path):
                failures.append("quarantine: unexpected entry %r" % entry)
                continue
            for name in os.listdir(path):
                if not re.fullmatch(r"qf|df|meta|part-\d+", name):
                    failures.append("quarantine %s: unexpected file %r" % (entry, name))
            lines = open(os.path.join(path, "meta"), "rb").read().split(b"\n")
            if lines[0] != b"mqscan-quarantine 1" or lines[-2:] != [b"end", b""]:
                failures.append("quarantine %s: meta not complete" % entry)
            for line in lines[1:-2]:
                if not re.fullmatch(rb"(id|queue-id|time|reason|action|direction|sender|recipient|"
                                    rb"subject|finding|part): [^\x00-\x1f\x7f]{0,1000}", line):
                    failures.append("quarantine %s: bad meta line %r" % (entry, line[:80]))
    print("policy: %d quarantine entries checked" % entries)
    for msg in failures[:60]:
        print("FAIL:", msg)
    if len(failures) > 60:
        print("... and %d more" % (len(failures) - 60))
    print("policy: %d messages checked; ham: %d of %d clean with nothing removed; %s; %d failures"
          % (len(index), ham_clean, ham_total,
             ", ".join("%s %d" % kv for kv in sorted(stats.items())), len(failures)))
    return 1 if failures else 0


def main():
    if sys.argv[1] == "make":
        cmd_make(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else "")
        return 0
    expect = sys.argv[7] if len(sys.argv) > 7 and sys.argv[6] == "--expect" else None
    return cmd_check(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], expect)


if __name__ == "__main__":
    sys.exit(main())
