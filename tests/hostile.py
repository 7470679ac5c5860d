#!/usr/bin/python3
"""hostile.py - hostile messages and queue files for hostile.sh, and the
checks of what mqscand made of them.

usage: hostile.py make QUEUEDIR CASES.json SET
       hostile.py check CASES.json LOG OUTDIR QUARANTINE HOLD SCANDIR
       hostile.py queue-names QUEUEDIR CANARY

"make" writes sendmail queue files (qf/df pairs) for the cases of SET into
QUEUEDIR, and CASES.json (what each must come to). Sets:
  content   malformed MIME, charsets, encoded words, hostile file names,
            CR/LF in everything that is copied into headers, forged
            X-mqscan and X-Spam headers, hostile queue files (valid IDs)
  bomb-NAME one message bomb (see BOMBS), alone so that its peak RSS is its own
"check" reads mqscand's log, the outgoing queue, the quarantine and the hold
area and checks every case and these rules, whatever the case:
  - every log line is one line of printable text starting "mqscand: "
  - each case has its outcome line, with a verdict the case allows; a case
    carrying the test virus is never "clean" or "passed"
  - a delivered message has only header names it came with plus those
    mqscand writes, one X-mqscan header (ours), no "X-Evil" line anywhere,
    and its header block + body are written to SCANDIR/ID.eml for the
    caller to scan (it must come out clean)
  - notifications (queue IDs N...) have only the headers mqscand writes
  - quarantine entries and their files have generated names only, and every
    meta line is one printable "key: value" field; hold reasons likewise
"queue-names" writes qf/df files whose names are not queue IDs ("..",
control characters, a name of 300 bytes, ...) and symbolic links to the
file CANARY; hostile.sh checks that mqscand leaves them alone.
Exit status 0 if every check holds; the failures are printed.
"""
import base64
import json
import os
import re
import struct
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import policy                     # noqa: E402  (eicar, make_zip)

INBOUND = ("mx.example.net [203.0.113.25]", "sender@example.net", ["user@mqscan.test"])
INTERNAL = ("pc12.mqscan.test [127.0.0.1]", "alice@mqscan.test", ["bob@mqscan.test"])
EVIL = "X-Evil: injected"          # must never start a line of any output
# Header names mqscand writes into a delivered message (the Content-* ones
# when it rewrites the top-level part).
OURS = {"x-mqscan", "x-mqscan-scl", "x-spam-flag", "x-spam-level", "x-spam-status",
        "received-spf", "mime-version", "content-type", "content-transfer-encoding",
        "content-disposition"}
NOTICE_HEADERS = {"from", "to", "subject", "date", "message-id", "auto-submitted", "x-mqscan",
                  "mime-version", "content-type", "content-transfer-encoding"}
STATUS_RE = re.compile(rb"^ (clean, scanned by|cleaned by|passed by policy) ")


def eicar():
    return policy.eicar()


def b64(data):
    return base64.encodebytes(data)


# ---- queue entries ---------------------------------------------------------

def qf_for(head, direction, now, sender=None, extra=b""):
    """A version 8 qf for header block head (LF line ends, folded lines
    kept as continuation records) sent in direction (INBOUND, INTERNAL)."""
    relay, from_, rcpts = direction
    lines = [b"V8", b"T%d" % now, b"K0", b"N0", b"P30000", b"Fbs", b"$_" + relay.encode(),
             b"$rESMTP", b"S<" + (sender if sender is not None else from_.encode()) + b">"]
    for r in rcpts:
        lines += [b"rRFC822; " + r.encode(), b"RPFD:<" + r.encode() + b">"]
    lines.append(b"H?P?Return-Path: <\x81g>")
    for line in head.rstrip(b"\n").split(b"\n"):
        lines.append(line if line[:1] in (b" ", b"\t") else b"H??" + line)
    return b"\n".join(lines) + b"\n" + extra + b".\n"


def message(head, body, direction=INBOUND, **kw):
    """(qf, df) for a message: head is its header block, body its df."""
    return {"qf": (head, direction, kw), "df": body}


def mixed(parts, boundary=b"b-42", head=b"", subject=b"hostile"):
    """A multipart/mixed message body and headers; parts are raw MIME
    parts (their own header block, blank line, content)."""
    hdr = (b"From: sender@example.net\nTo: user@mqscan.test\nSubject: " + subject + b"\n"
           b"Date: Tue, 24 Nov 2026 10:00:00 +0000\nMessage-ID: <h@example.net>\n"
           b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"" + boundary + b"\"\n"
           + head)
    body = b"".join(b"--" + boundary + b"\n" + p + b"\n" for p in parts)
    return hdr, body + b"--" + boundary + b"--\n"


TEXT = b"Content-Type: text/plain; charset=us-ascii\n\nHello, see the attachment.\n"


def attach(disposition, data, ctype=b"application/octet-stream", cte=b"base64"):
    """An attachment part; disposition is the Content-Disposition value."""
    content = b64(data) if b"base64" in cte.lower() else data
    return (b"Content-Type: " + ctype + b"\nContent-Disposition: " + disposition + b"\n"
            b"Content-Transfer-Encoding: " + cte + b"\n\n" + content)


def with_eicar(disposition=b"attachment; filename=\"test.txt\"", head=b"", subject=b"hostile"):
    return mixed([TEXT, attach(disposition, eicar())], head=head, subject=subject)


# ---- the content set -------------------------------------------------------

def qp_all(data):
    return b"".join(b"=%02X" % c for c in data)


def rfc2047(text, enc="B"):
    raw = text.encode("utf-8") if isinstance(text, str) else text
    if enc == "B":
        return b"=?utf-8?B?" + base64.b64encode(raw) + b"?="
    return b"=?utf-8?Q?" + b"".join(b"=%02X" % c for c in raw) + b"?="


def rfc2231(value, chunk=0):
    """filename*=utf-8''... , or with chunk, filename*0*=...; filename*1*=...
    split between escapes (each section is decoded on its own)."""
    from urllib.parse import quote
    tokens = re.findall(r"%[0-9A-F]{2}|.", quote(value, safe=""))
    if not chunk:
        return b" filename*=utf-8''" + "".join(tokens).encode()
    pieces = ["".join(tokens[i:i + chunk]) for i in range(0, len(tokens), chunk)] or [""]
    return b";".join(("\n filename*%d*=%s%s" % (i, "utf-8''" if i == 0 else "", p)).encode()
                     for i, p in enumerate(pieces))


def content_cases():
    """(label, entry, allowed verdicts, carries the test virus)"""
    e = eicar()
    out = []

    def case(label, head_body, verdicts, virus, direction=INBOUND, log=None, **kw):
        head, body = head_body
        out.append((label, message(head, body, direction, **kw), verdicts, virus, log))

    # Malformed MIME: whatever the structure, the test virus never passes.
    base = b"From: s@example.net\nSubject: malformed\nMIME-Version: 1.0\n"
    part = attach(b"attachment; filename=\"v.txt\"", e)
    case("multipart without boundary", (base + b"Content-Type: multipart/mixed\n",
         b"--x\n" + TEXT + b"\n--x\n" + part + b"\n--x--\n"), ["cleaned"], True)
    case("empty boundary", (base + b"Content-Type: multipart/mixed; boundary=\"\"\n",
         b"--\n" + TEXT + b"\n--\n" + part + b"\n----\n"), ["cleaned"], True)
    case("two boundary parameters",
         (base + b"Content-Type: multipart/mixed; boundary=a; boundary=b\n",
          b"--a\n" + TEXT + b"\n--b\n" + part + b"\n--a\n" + part + b"\n--b--\n--a--\n"),
         ["cleaned"], True)
    case("unterminated multipart, ends in half a base64 group",
         (base + b"Content-Type: multipart/mixed; boundary=u\n",
          b"--u\n" + TEXT + b"\n--u\n" + part + b"QUJ"), ["cleaned"], True)
    case("child reuses the parent's boundary",
         (base + b"Content-Type: multipart/mixed; boundary=r\n",
          b"--r\nContent-Type: multipart/alternative; boundary=r\n\n--r\n" + TEXT + b"\n--r\n"
          + part + b"\n--r--\n--r--\n"), ["cleaned"], True)
    case("part after the closing boundary", (base + b"Content-Type: multipart/mixed; boundary=c\n",
         b"--c\n" + TEXT + b"\n--c--\n--c\n" + part + b"\n--c--\n"), ["clean", "cleaned"], True)
    junk = b"!".join(b64(e)[i:i + 4] for i in range(0, len(b64(e)) - 1, 4)) + b"\n"
    case("base64 with junk between groups", mixed([TEXT, (
        b"Content-Type: application/octet-stream\nContent-Disposition: attachment; "
        b"filename=j.bin\nContent-Transfer-Encoding: base64\n\n" + junk)]), ["cleaned"], True)
    case("base64 without padding, split lines", mixed([TEXT, (
        b"Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
        + b"\n".join(base64.b64encode(e).rstrip(b"=")[i:i + 5]
                     for i in range(0, 100, 5)) + b"\n")]), ["cleaned"], True)
    case("quoted-printable, every byte encoded, soft breaks",
         mixed([TEXT, (b"Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n"
                       + b"=\n".join(qp_all(e)[i:i + 30] for i in range(0, len(qp_all(e)), 30))
                       + b"\n=ZZ=\n")]), ["cleaned"], True)
    for cte in (b"BASE64", b" base64 (old mailer)", b"base64; x=y", b"x-uuencode", b"8bit"):
        case("Content-Transfer-Encoding %r" % cte.decode(),
             mixed([TEXT, attach(b"attachment; filename=cte.bin", e, cte=cte)]), ["cleaned"], True)
    case("bogus Content-Transfer-Encoding", mixed([TEXT, (
        b"Content-Type: application/octet-stream\nContent-Transfer-Encoding: base-65\n\n"
        + b64(b"harmless, whatever it says\n"))]), ["clean"], False)
    case("NUL bytes in the body and a text part", mixed([
        b"Content-Type: text/plain\n\nbefore\x00\x00after\x00\n" + e + b"\n\x00"]),
        ["cleaned"], True)
    case("8-bit headers", mixed([TEXT, attach(
        "attachment; filename=\"r\u00e9sum\u00e9 \u00fc.txt\"".encode("utf-8"), e)],
        head="X-Latin: caf\xe9 \xfc\nX-Utf8: \u00e9t\u00e9\n".encode("latin-1", "replace")
        + "X-Raw: \u65e5\u672c\n".encode("utf-8")), ["cleaned"], True)
    crlf = mixed([TEXT, part])
    case("CRLF and bare CR line ends", (crlf[0], crlf[1].replace(b"\n", b"\r\n")
                                         .replace(b"Hello,", b"Hello,\r\rbare CR\r"))
         , ["cleaned"], True)
    case("bare CR only", (base + b"Content-Type: multipart/mixed; boundary=q\n",
                          (b"--q\n" + TEXT + b"\n--q\n" + part + b"\n--q--\n")
                          .replace(b"\n", b"\r")),
         ["clean", "cleaned"], True)
    nest = e
    for i in range(30):
        nest = (b"Content-Type: message/rfc822\n\nSubject: level %d\nMIME-Version: 1.0\n" % i
                + (b"Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
                   + b64(nest) if i == 0 else nest))
    case("message/rfc822 nested 30 deep", mixed([TEXT, nest]), ["cleaned"], True)
    inner = b"Subject: inner\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b-42\n\n"
    case("message/rfc822 that reuses the outer boundary", mixed([
        TEXT, b"Content-Type: message/rfc822\n\n" + inner + b"--b-42\n" + part + b"\n--b-42--\n"]),
        ["cleaned"], True)
    case("message/rfc822 holding itself, base64", mixed([
        TEXT, b"Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n"
        + b64(b"\n".join(mixed([TEXT, part])))]), ["cleaned"], True)
    # sendmail writes no header record without a name: such a qf is held.
    case("header line without a colon", (base + b"no colon here\n", b"text\n"), ["held"], False,
         log="corrupt queue file: bad qf file: header record without a field name")
    case("part headers with blanks and without colons", mixed([TEXT, (
        b"no colon here\n: empty name\nContent-Type : application/octet-stream ; name = \"v.bin\"\n"
        b"Content-Transfer-Encoding :base64\n\n" + b64(e))]), ["cleaned"], True)

    # Charsets: the notice goes into the text part, which is decoded from its
    # charset, whatever the charset is and whatever the bytes are.
    for label, ctype, text in (
            ("unknown charset", b"text/plain; charset=x-unknown-42", b"caf\xe9 ok\n"),
            ("charset with quotes and a parameter",
             b"text/plain; charset=\"utf-8\\\"; name=\\\"x.exe\"", b"text\n"),
            ("charset with a path", b"text/plain; charset=\"../../../etc/passwd\"", b"text\n"),
            ("charset with CR LF (RFC 2231)", b"text/plain; charset*=us-ascii''utf-8%0D%0A"
             + EVIL.replace(" ", "%20").encode(), b"text\n"),
            ("invalid UTF-8", b"text/plain; charset=utf-8",
             b"\xc3\x28 \xe2\x82 \xf0\x9f\x92 \xff\xfe\n"),
            ("broken ISO-2022-JP", b"text/plain; charset=iso-2022-jp",
             b"\x1b$B$3$s\x1b(B ok \x1b$B\x80\x81\x1b( \x1b$\n"),
            ("UTF-16, odd length, lone surrogates", b"text/plain; charset=utf-16le",
             "ab".encode("utf-16le") + b"\x00\xd8\x41\x00\x00\xdc\x42")):
        case(label, mixed([b"Content-Type: " + ctype + b"\n\n" + text,
                           attach(b"attachment; filename=v.txt", e)]), ["cleaned"], True)

    # The notice rewrites the text part's Content-Type (charset=utf-8): a CR
    # in another of its parameters must not come out as a line end.
    case("CR in a parameter of the text part", mixed([
        b"Content-Type: text/plain; charset=us-ascii; x-junk=\"a\r" + EVIL.encode()
        + b"\"\n\ntext\n", attach(b"attachment; filename=v.txt", e)]), ["cleaned"], True)
    # More infected parts than findings are kept (100): the rebuilt message
    # is scanned again, and what is left goes too.
    case("150 infected attachments", mixed([TEXT] + [
        attach(b"attachment; filename=v%d.txt" % i, e) for i in range(150)]), ["cleaned"], True)

    # Encoded words that decode to CR, LF, NUL, "/" and "..", in the subject
    # (logged, in the quarantine metadata, in the notices) and in file names.
    bad = "a\r\n" + EVIL + "\r\n\x00/../../x"
    for direction, where in ((INBOUND, "inbound"), (INTERNAL, "internal")):
        case("RFC 2047 subject with CR LF NUL, " + where,
             with_eicar(subject=rfc2047(bad, "Q")), ["cleaned"], True, direction)
        case("RFC 2231 file name with CR LF NUL / .., " + where, with_eicar(
            b"attachment;" + rfc2231(bad + ".txt")), ["cleaned"], True, direction)
        case("RFC 2231 continuations with CR LF NUL / .., " + where, with_eicar(
            b"attachment;" + rfc2231(bad + ".txt", 3)), ["cleaned"], True, direction)
        case("RFC 2047 file name with CR LF, " + where, with_eicar(
            b"attachment; filename=\"" + rfc2047(bad + ".txt") + b"\""), ["cleaned"], True,
            direction)
    # Names that would be paths, and names of every size.
    for name in ("../../etc/passwd", "/etc/shadow", "..\\..\\win.ini", "./.", "..",
                 "evil\x00.exe", "a" * 100000 + ".txt", "\u202etxt.exe", " ", ""):
        case("file name %r" % name[:20], with_eicar(b"attachment;" + rfc2231(name, 40)),
             ["cleaned"], True)
    case("file name in a quoted string with a raw CR", with_eicar(
        b"attachment; filename=\"a\rX-Evil: injected.txt\""), ["cleaned"], True)
    # Archive members are named by the sender too: they show in the findings.
    zipped = policy.make_zip([("dir/../../" + bad + ".exe", b"MZ harmless\n")])
    case("zip member name with CR LF and ..", mixed([TEXT, attach(
        b"attachment; filename=\"names.zip\"", zipped, b"application/zip")]), ["cleaned"], False)
    zipped = policy.make_zip([("a\r\n" + EVIL + ".txt", e)])
    case("zip member with the virus, CR LF in its name", mixed([TEXT, attach(
        b"attachment; filename=\"v.zip\"", zipped, b"application/zip")]), ["cleaned"], True)

    # The envelope: a sender with a continuation line, a subject folded with
    # CR, and a subject the spam tag is put in front of.
    # sendmail writes an address on one line: a qf with more is held.
    for label, sender in (("sender with a continuation line",
                           b"alice@mqscan.test>\n " + EVIL.encode() + b" <x"),
                          ("sender with CR", b"alice\r" + EVIL.encode() + b"@mqscan.test")):
        case(label, with_eicar(), ["held"], False, INTERNAL, sender=sender,
             log="corrupt queue file: .*control character or continuation line in the sender")
    case("sender with quotes, blanks and brackets", with_eicar(), ["cleaned"], True, INTERNAL,
         sender=b"\"alice (x) <y>\"@mqscan.test")
    case("subject folded with CR and LF", with_eicar(
        subject=b"first\n\tsecond\r" + EVIL.encode()), ["cleaned"], True)
    case("CR in a header of a clean message", mixed([TEXT], head=b"X-Note: a\r" + EVIL.encode()
                                                   + b"\n"), ["clean"], False)
    case("subject that is only blanks, tagged", with_eicar(subject=b"   "), ["cleaned"], True)

    # Forged status headers from outside are removed; internal mail keeps
    # X-Spam-* (no spam checks ran), never X-mqscan*.
    forged = (b"X-mqscan: clean, scanned by a forger\nX-MQSCAN-SCL: 0\nx-mqscan-quarantine: none\n"
              b"X-mqscan:\n\tclean, folded forgery\nX-Spam-Flag: NO\nX-Spam-Status: No, "
              b"score=-100 FORGED\nX-Spam-Level: \nX-Spam-Score: -100 FORGED\n")
    case("forged X-mqscan and X-Spam headers, inbound", mixed([TEXT], head=forged), ["clean"],
         False)
    case("forged X-mqscan and X-Spam headers, inbound, infected", with_eicar(head=forged),
         ["cleaned"], True)
    case("forged X-mqscan headers, internal", mixed([TEXT], head=forged), ["clean"], False,
         INTERNAL)

    # Queue files: valid IDs whose files are not what they claim.
    for label, qf, df, verdicts, virus, log in (
            ("qf with a NUL byte", qf_for(b"Subject: x\x00y", INBOUND, 0), b"body\n", ["held"],
             False, "corrupt queue file: bad qf file: contains NUL bytes"),
            # In the log, the quarantine metadata and the report, cut short.
            ("qf with a 1 MB recipient, infected", qf_for(b"Subject: x", INBOUND, 0).replace(
                b"RPFD:<user@mqscan.test>", b"RPFD:<" + b"u" * (1 << 20) + b"@mqscan.test>"),
             b"text\n" + e + b"\n", ["cleaned"], True, None),
            ("qf header without a name", qf_for(b": no name", INBOUND, 0), b"body\n", ["held"],
             False, "corrupt queue file: bad qf file: header record without a field name"),
            ("qf without its end record", qf_for(b"Subject: x", INBOUND, 0)[:-2], b"body\n",
             ["held"], False, "corrupt queue file: bad qf file: no end record"),
            ("df missing", qf_for(b"Subject: x", INBOUND, 0), None, ["held"],
             False, "corrupt queue file: data file dfH\\d+: missing")):
        out.append((label, {"raw_qf": qf, "df": df}, verdicts, virus, log))
    return out


# ---- bombs -----------------------------------------------------------------

def deflate_zeros(mb):
    """Raw deflate of mb MiB of zero bytes, fast: after a full flush every
    MiB compresses to the same bytes."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1 << 20)
    first = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    rest = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    return first + rest * (mb - 1) + c.flush()


def zip_raw(members, zip64=False):
    """A zip of (name, method, crc, stored bytes, uncompressed size); zip64
    writes the size fields as 0xFFFFFFFF with a zip64 extra field."""
    local, cd, offset = [], [], 0
    for name, method, crc, data, usize in members:
        n = name.encode()
        extra, c32, u32 = b"", len(data), usize
        if zip64:
            extra = struct.pack("<HHQQ", 1, 16, usize, len(data))
            c32 = u32 = 0xFFFFFFFF
        cd.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, method, 0, 0x21, crc,
                              c32, u32, len(n), len(extra), 0, 0, 0, 0, offset) + n + extra)
        local.append(struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, method, 0, 0x21, crc, c32, u32,
                                 len(n), len(extra)) + n + extra + data)
        offset += len(local[-1])
    cd = b"".join(cd)
    count = min(len(members), 0xFFFF)
    return b"".join(local) + cd + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count,
                                              len(cd), offset, 0)


def zeros_crc(mb):
    crc, chunk = 0, bytes(1 << 20)
    for _ in range(mb):
        crc = zlib.crc32(chunk, crc)
    return crc


def zip_bomb(mb, zip64=False):
    return zip_raw([("zeros.bin", 8, zeros_crc(mb), deflate_zeros(mb), mb << 20)], zip64)


def zip_42(levels, width, leaf):
    """42.zip: width copies of the level below, deflated, levels deep."""
    data = leaf
    for level in range(levels):
        comp = zlib.compressobj(9, zlib.DEFLATED, -15)
        packed = comp.compress(data) + comp.flush()
        data = zip_raw([("%d-%d.zip" % (level, i), 8, zlib.crc32(data), packed, len(data))
                        for i in range(width)])
    return data


def zip_many(n):
    return zip_raw([("f%06d.txt" % i, 0, 0, b"", 0) for i in range(n)])


def bomb_message(name, data):
    head, body = mixed([TEXT, attach(b"attachment; filename=\"" + name + b"\"", data,
                                     b"application/zip")])
    return head, body


def deep_multipart(depth):
    parts = [b"--d%d\nContent-Type: multipart/mixed; boundary=\"d%d\"\n\n" % (i, i + 1)
             for i in range(depth)]
    closes = [b"--d%d--\n" % i for i in range(depth, -1, -1)]
    return (b"From: s@example.net\nSubject: deep\nMIME-Version: 1.0\n"
            b"Content-Type: multipart/mixed; boundary=\"d0\"\n",
            b"".join(parts) + b"--d%d\n" % depth + TEXT + b"\n" + b"".join(closes))


def deep_rfc822(depth):
    levels = [b"Content-Type: message/rfc822\n\nSubject: level %d\n" % i for i in range(depth)]
    return (b"From: s@example.net\nSubject: deep rfc822\nMIME-Version: 1.0\n"
            b"Content-Type: message/rfc822\n",
            b"Subject: top\n" + b"".join(levels) + TEXT)


def many_parts(n):
    parts = b"".join(b"--p\nContent-Type: text/plain\n\npart %d\n" % i for i in range(n))
    return (b"From: s@example.net\nSubject: many\nMIME-Version: 1.0\n"
            b"Content-Type: multipart/mixed; boundary=\"p\"\n", parts + b"--p--\n")


def big_headers(lines, mb):
    """lines header lines, one header folded over mb MB and one line of mb MB."""
    folded = b"X-Folded: start" + b"".join(b"\n\t" + b"x" * 70 for _ in range(mb * 14000))
    long = b"X-Long: " + b"y" * (mb << 20)
    many = b"".join(b"X-H%d: value %d\n" % (i, i) for i in range(lines))
    return (b"From: s@example.net\nSubject: big headers\n" + many + folded + b"\n" + long + b"\n",
            TEXT)


# name -> (builder of (head, body), what it is, its verdict, what must be logged)
CENSUS = (r"message: unscannable \d+ MIME parts, header lines, addresses or parameters "
          r"may be in it, more than max_mime_parts")
BOMBS = {
    "deep-multipart": (lambda: deep_multipart(5000), "5,000 nested multiparts", "cleaned",
                       r"message: unscannable MIME nesting deeper than max_mime_depth"),
    "deep-rfc822": (lambda: deep_rfc822(50000), "50,000 nested messages", "cleaned", CENSUS),
    "parts": (lambda: many_parts(100000), "100,000 MIME parts", "cleaned", CENSUS),
    "digest": (lambda: (b"Subject: digest\nMIME-Version: 1.0\n"
                        b"Content-Type: multipart/digest; boundary=\"d\"\n",
                        b"--d\n\n" + b"A: b\n" * 1000000 + b"\ntext\n--d--\n"),
               "1,000,000 header lines in a digest's message", "cleaned", CENSUS),
    # GMime reads such a list in quadratic time (60,000 names: 14 s).
    "addresses": (lambda: mixed([TEXT, b"Content-Type: message/rfc822\n\nSubject: list\nTo: "
                                 + b"a," * 60000 + b"a\n\ntext\n"]),
                  "a To of 60,000 names in an attached message", "cleaned",
                  r"message: unscannable address lists that would take GMime too long"),
    "headers": (lambda: big_headers(100000, 3), "100,000 header lines, 3 MB headers", "cleaned",
                CENSUS),
    # Over max_message_size (1M for this one): held unread.
    "size": (lambda: mixed([TEXT, attach(b"attachment; filename=big.bin", bytes(3 << 20))]),
             "3 MB over max_message_size", "held", r"^ over a size limit: "),
    "zip-4g": (lambda: bomb_message(b"bomb.zip", zip_bomb(4000)), "one member of 4,000 MiB",
               "cleaned", r"\(bomb.zip\): limits Heuristics.Limits.Exceeded.MaxFileSize"),
    "zip64-4g": (lambda: bomb_message(b"bomb64.zip", zip_bomb(4200, zip64=True)),
                 "one zip64 member of 4,200 MiB", "cleaned",
                 r"\(bomb64.zip\): limits Unsupported.Zip64"),
    "zip-42": (lambda: bomb_message(b"42.zip", zip_42(4, 16, zip_bomb(100))),
               "16^4 members of 100 MiB: 6.5 TiB", "cleaned",
               r"\(42.zip\): limits Heuristics.Limits.Exceeded.Max(FileSize|ScanSize|Recursion)"),
    "zip-files": (lambda: bomb_message(b"files.zip", zip_many(100000)), "100,000 members",
                  "cleaned", r"\(files.zip\): limits Heuristics.Limits.Exceeded.MaxFiles"),
}


# ---- make ------------------------------------------------------------------

def write_entry(queuedir, qid, entry, now):
    if "raw_qf" in entry:
        qf = entry["raw_qf"].replace(b"T0\n", b"T%d\n" % now, 1)
    else:
        head, direction, kw = entry["qf"]
        qf = qf_for(head, direction, now, **kw)
    files = [("qf" + qid, qf)]
    if entry["df"] is not None:
        files.insert(0, ("df" + qid, entry["df"]))
    for name, data in files:
        path = os.path.join(queuedir, name)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o600)
    return qf


def cmd_make(queuedir, casefile, which):
    now = int(time.time())
    index = []
    if which == "content":
        cases = content_cases()
    else:
        build, what, verdict, log = BOMBS[which[len("bomb-"):]]
        head, body = build()
        cases = [(which + ": " + what, message(head, body), [verdict], False, log)]
    for n, (label, entry, verdicts, virus, log) in enumerate(cases, 1):
        qid = "H%05d" % n
        qf = write_entry(queuedir, qid, entry, now)
        direction = entry["qf"][1] if "qf" in entry else INBOUND
        index.append({"id": qid, "label": label, "verdicts": verdicts, "virus": virus, "log": log,
                      "size": len(entry["df"] or b""),
                      "direction": "inbound" if direction == INBOUND else "internal",
                      "in_names": sorted({n.lower() for n, _ in headers_of(qf)})})
    with open(casefile, "w") as f:
        json.dump(index, f, indent=0)
    print("hostile: %d queue entries written (%s), %d bytes of df"
          % (len(index), which, sum(c["size"] for c in index)))


def cmd_queue_names(queuedir, canary):
    """Files that are not queue entries mqscand may touch."""
    qf = qf_for(b"Subject: hostile name", INBOUND, int(time.time()))
    names = ["qf..", "qf.", "qf-A", "qfA B", "qfA\nB", "qfA\rB", "qf\u00e9t\u00e9", "qf*",
             "qf" + "A" * 250, "qf\\x", "qf$(touch pwned)", "qfA;B", "qf%2e%2e", "qf\x01",
             "qf~"]
    for name in names:
        for kind in ("df", "qf"):
            with open(os.path.join(queuedir, kind + name[2:]), "wb") as f:
                f.write(qf if kind == "qf" else b"body\n")
    # Valid IDs whose files are links out of the queue: held, never followed.
    os.symlink(canary, os.path.join(queuedir, "qfLINK1"))
    os.symlink(canary, os.path.join(queuedir, "dfLINK1"))
    with open(os.path.join(queuedir, "qfLINK2"), "wb") as f:
        f.write(qf)
    os.symlink(canary, os.path.join(queuedir, "dfLINK2"))
    print("hostile: %d hostile names and 2 linked entries written" % len(names))


# ---- check -----------------------------------------------------------------

failures = []


def fail(msg):
    failures.append(msg)


def evil_lines(data):
    """Lines of data that start (after blanks, and "H??" in a qf) with the
    injected header."""
    bad = []
    for line in re.split(rb"\r\n|\r|\n", data):
        text = re.sub(rb"^H\?[^?]*\?", b"", line).lstrip(b" \t").lower()
        if text.startswith(EVIL.split(":")[0].lower().encode() + b":"):
            bad.append(line[:80])
    return bad


def headers_of(qf):
    """(name, value) of each H record (sendmail's ?flags? removed), the
    continuation lines joined with newlines."""
    out, in_header = [], False
    for line in qf.split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            if in_header:
                out[-1][1].append(line)
            continue
        in_header = line[:1] == b"H"
        if in_header:
            h = re.sub(rb"^\?[^?]*\?", b"", line[1:])
            name, _, value = h.partition(b":")
            out.append((name.decode("latin-1"), [value]))
    return [(name, b"\n".join(value)) for name, value in out]


def check_delivered(case, outdir, scandir):
    qid = case["id"]
    qf = open(os.path.join(outdir, "qf" + qid), "rb").read()
    df = open(os.path.join(outdir, "df" + qid), "rb").read()
    hdrs = headers_of(qf)
    names = {n.lower() for n, _ in hdrs}
    allowed = set(case["in_names"]) | OURS
    for n in names - allowed:
        fail("%s (%s): header %r added" % (qid, case["label"], n))
    for n, _ in hdrs:
        if not re.fullmatch(r"[!-9;-~]+", n):
            fail("%s (%s): header name %r" % (qid, case["label"], n))
    status = [v for n, v in hdrs if n.lower() == "x-mqscan"]
    if len(status) != 1 or not STATUS_RE.match(status[0]):
        fail("%s (%s): X-mqscan headers %r" % (qid, case["label"], status))
    # X-mqscan-SCL: one, a digit, where the spam checks ran; no other X-mqscan*.
    ours = sorted((n.lower(), v) for n, v in hdrs if n.lower().startswith("x-mqscan-"))
    want = 1 if case["direction"] == "inbound" else 0
    if len(ours) != want or any(n != "x-mqscan-scl" or not re.fullmatch(rb" \d", v)
                                for n, v in ours):
        fail("%s (%s): X-mqscan-* headers %r" % (qid, case["label"], ours))
    spam = [v for n, v in hdrs if n.lower().startswith("x-spam-")]
    if case["direction"] == "inbound" and any(b"FORGED" in v for v in spam):
        fail("%s (%s): forged X-Spam header delivered" % (qid, case["label"]))
    for data, what in ((qf, "qf"), (df, "df")):
        for line in evil_lines(data):
            fail("%s (%s): injected line in the delivered %s: %r"
                 % (qid, case["label"], what, line))
    text = b"".join(n.encode("latin-1") + b":" + v + b"\n" for n, v in hdrs if b"\x81" not in v)
    with open(os.path.join(scandir, qid + ".eml"), "wb") as f:
        f.write(text + b"\n" + df)


def check_notice(qid, outdir):
    qf = open(os.path.join(outdir, "qf" + qid), "rb").read()
    df = open(os.path.join(outdir, "df" + qid), "rb").read()
    for n, _ in headers_of(qf):
        if n.lower() not in NOTICE_HEADERS:
            fail("notice %s: header %r" % (qid, n))
    for data in (qf, df):
        for line in evil_lines(data):
            fail("notice %s: injected line %r" % (qid, line))
    if not re.search(rb"^S<>$", qf, re.M):
        fail("notice %s: sender is not <>" % qid)


def check_quarantine(quarantine):
    n = 0
    for day in os.listdir(quarantine):
        if day == "tmp":
            if os.listdir(os.path.join(quarantine, day)):
                fail("quarantine/tmp is not empty")
            continue
        if not re.fullmatch(r"\d{8}", day):
            fail("quarantine: unexpected %r" % day)
            continue
        for entry in os.listdir(os.path.join(quarantine, day)):
            n += 1
            path = os.path.join(quarantine, day, entry)
            if not re.fullmatch(r"[A-Za-z0-9]{1,64}-[a-z0-9]{6}", entry) or os.path.islink(path):
                fail("quarantine: unexpected entry %r" % entry)
                continue
            for name in os.listdir(path):
                if not re.fullmatch(r"qf|df|meta|part-\d+", name):
                    fail("quarantine %s: unexpected file %r" % (entry, name))
            meta = open(os.path.join(path, "meta"), "rb").read()
            lines = meta.split(b"\n")
            if lines[0] != b"mqscan-quarantine 1" or lines[-2:] != [b"end", b""]:
                fail("quarantine %s: meta not complete" % entry)
            for line in lines[1:-2]:
                if not re.fullmatch(rb"[a-z-]+: [^\x00-\x1f\x7f]{0,1000}", line):
                    fail("quarantine %s: bad meta line %r" % (entry, line[:80]))
    return n


def check_hold(hold):
    n = 0
    for name in os.listdir(hold):
        if not re.fullmatch(r"[qd]f[A-Za-z0-9]{1,64}(-\d+)?|[A-Za-z0-9]{1,64}(-\d+)?\.reason",
                            name):
            fail("hold: unexpected file %r" % name)
        if name.endswith(".reason"):
            n += 1
            text = open(os.path.join(hold, name), "rb").read()
            if not re.fullmatch(rb"id: \S+\nreason: [^\x00-\x1f\x7f]*\ntime: \d+\nend\n", text):
                fail("hold: bad reason file %s: %r" % (name, text[:120]))
    return n


def check_log(logfile):
    lines = open(logfile, "rb").read().split(b"\n")
    if lines[-1] != b"":
        fail("log: does not end with a newline")
    for line in lines[:-1]:
        if not re.fullmatch(rb"mqscand: (debug|info|warning|error): [\x20-\x7e\x80-\xff]*", line):
            fail("log: not one printable line: %r" % line[:120])
    for line in evil_lines(b"\n".join(lines)):
        fail("log: injected line %r" % line)
    return [line.decode("utf-8", "replace") for line in lines]


def cmd_check(casefile, logfile, outdir, quarantine, hold, scandir):
    cases = json.load(open(casefile))
    log = check_log(logfile)
    outcome = {}
    for line in log:
        m = re.match(r"mqscand: \w+: (H\d{5}): from=<.*?> size=\d+ nrcpt=\d+ verdict=(\w+)(.*)$",
                     line)
        if m:
            if m.group(1) in outcome:
                fail("%s: two outcome lines" % m.group(1))
            outcome[m.group(1)] = (m.group(2), m.group(3))
    counts = {}
    for case in cases:
        qid, label = case["id"], case["label"]
        if qid not in outcome:
            fail("%s (%s): no outcome logged" % (qid, label))
            continue
        verdict, detail = outcome[qid]
        counts[verdict] = counts.get(verdict, 0) + 1
        if verdict not in case["verdicts"]:
            fail("%s (%s): verdict %s, expected %s: %s"
                 % (qid, label, verdict, "/".join(case["verdicts"]), detail[:300]))
        if case["log"] and not re.search(case["log"], detail):
            fail("%s (%s): logged %r, expected /%s/" % (qid, label, detail[:200], case["log"]))
        if case["virus"] and verdict in ("clean", "passed"):
            fail("%s (%s): the test virus passed" % (qid, label))
        delivered = os.path.exists(os.path.join(outdir, "qf" + qid))
        if delivered != (verdict in ("clean", "passed", "cleaned")):
            fail("%s (%s): verdict %s but %sdelivered" % (qid, label, verdict,
                                                        "" if delivered else "not "))
        if delivered:
            check_delivered(case, outdir, scandir)
    notices = [n[2:] for n in os.listdir(outdir) if n.startswith("qfN")]
    for qid in notices:
        check_notice(qid, outdir)
    entries = check_quarantine(quarantine)
    held = check_hold(hold)
    for msg in failures[:80]:
        print("FAIL:", msg)
    if len(failures) > 80:
        print("... and %d more" % (len(failures) - 80))
    print("hostile: %d cases: %s; %d notifications, %d quarantine entries, %d held; %d failures"
          % (len(cases), ", ".join("%s %d" % kv for kv in sorted(counts.items())), len(notices),
             entries, held, len(failures)))
    return 1 if failures else 0


def main():
    cmd = sys.argv[1]
    if cmd == "make":
        cmd_make(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "queue-names":
        cmd_queue_names(sys.argv[2], sys.argv[3])
    elif cmd == "check":
        return cmd_check(*sys.argv[2:8])
    return 0


if __name__ == "__main__":
    sys.exit(main())
