#!/usr/bin/python3
"""e2e_check.py - check what reached the sink against what was sent.

usage: e2e_check.py --sent DIR --sink DIR --quarantine DIR --incoming DIR
                    --hold DIR --scanfile BIN --sigs DIR [--snapshot DIR]

Every message in DIR/manifest.tsv (written by inject.py) must arrive at the
sink exactly once with its envelope intact and one X-mqscan header (forged
ones removed). A clean message must arrive with its headers in their order and
its body byte for byte: compared with the qf/df pair the incoming sendmail
queued (--snapshot: a copy of the incoming queue taken before mqscand ran),
or else with the bytes sent (only meaningful for well-formed messages, since
sendmail decides where a malformed header ends); an infected one must arrive cleaned (the scanner finds
nothing in it) while its original, in quarantine, is still infected; a
"removed" one (the policy removes content no signature matches: limits,
fragments, encryption) must arrive cleaned with its original in quarantine. A message
of kind "held" must not arrive at all and must be in the hold area with its
reason; nothing else may be held, and the incoming queue must be empty.
Exit 0 if all holds.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

failures = []


def fail(msg):
    failures.append(msg)


def split_message(raw):
    m = re.search(rb"\r?\n\r?\n", raw)
    if m is None:
        return raw, b""
    return raw[: m.start()], raw[m.end():]


def header_names(head):
    names = []
    for line in re.split(rb"\r?\n", head):
        if line and line[:1] not in (b" ", b"\t") and b":" in line:
            names.append(line.split(b":", 1)[0].strip().lower())
    return names


def header_values(head, name):
    values, current = [], None
    for line in re.split(rb"\r?\n", head):
        if line[:1] in (b" ", b"\t") and current is not None:
            values[-1] += b" " + line.strip()
            continue
        current = None
        if b":" in line and line.split(b":", 1)[0].strip().lower() == name:
            values.append(line.split(b":", 1)[1].strip())
            current = name
    return values


WRAPPED = re.compile(rb"(?m)^[^\r\n]{989}!\r$")


def same_body(delivered, expected):
    """delivered ends with expected, allowing for sendmail's line wrap.

    sendmail's SMTP mailers break lines longer than 990 bytes (L=990; RFC
    5321 allows 1000 and the sink enforces it) with "!" CRLF and sometimes a
    space. Where the delivered copy shows that, compare without "!", spaces
    and line breaks; everywhere else compare byte for byte."""
    if delivered.endswith(expected):
        return True
    if not WRAPPED.search(delivered):
        return False
    squash = lambda b: re.sub(rb"[! \r\n]", b"", b)
    return squash(delivered).endswith(squash(expected))


def is_subsequence(small, big):
    it = iter(big)
    return all(any(x == y for y in it) for x in small)


def scan(scanfile, sigs, path):
    return subprocess.run([scanfile, sigs, path], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT).returncode


def qf_headers(qf):
    out = []
    for line in qf.split(b"\n"):
        if line.startswith(b"H"):
            h = line[1:]
            if h.startswith(b"?"):
                h = h[h.index(b"?", 1) + 1:]
            if b"\x81" not in h:
                out.append(h)
        elif line[:1] == b"\t" and out:
            out[-1] += b"\n" + line
    return b"\n".join(out) + b"\n"


def main():
    ap = argparse.ArgumentParser()
    for opt in ("sent", "sink", "quarantine", "incoming", "hold", "scanfile", "sigs"):
        ap.add_argument("--" + opt, required=True)
    ap.add_argument("--snapshot")
    a = ap.parse_args()

    queued = {}     # N -> (header names from the qf, df bytes)
    if a.snapshot:
        for name in os.listdir(a.snapshot):
            if not name.startswith("qf"):
                continue
            with open(os.path.join(a.snapshot, name), "rb") as f:
                qf = f.read()
            m = re.search(rb"^S<test-(\d+)@example\.com>$", qf, re.M)
            with open(os.path.join(a.snapshot, "df" + name[2:]), "rb") as f:
                df = f.read()
            queued[int(m.group(1))] = (header_names(qf_headers(qf)), df)

    manifest = {}
    with open(os.path.join(a.sent, "manifest.tsv")) as f:
        for line in f:
            n, kind, src, rcpts = line.rstrip("\n").split("\t")
            manifest[int(n)] = (kind, src, sorted(rcpts.split(",")))

    arrived = {}
    for name in os.listdir(a.sink):
        if not name.endswith(".env"):
            continue
        with open(os.path.join(a.sink, name)) as f:
            env = json.load(f)
        m = re.match(r"test-(\d+)@example\.com$", env["mail_from"])
        if m is None:
            fail("unexpected message at the sink from <%s>" % env["mail_from"])
            continue
        eml = os.path.join(a.sink, name[:-4] + ".eml")
        arrived.setdefault(int(m.group(1)), []).append((eml, env["rcpt_tos"]))

    clean = infected = removed = 0
    for n, (kind, src, rcpts) in sorted(manifest.items()):
        got = arrived.get(n, [])
        if kind == "held":
            if got:
                fail("message %d (%s) should be held but arrived" % (n, src))
            continue
        if len(got) != 1:
            fail("message %d (%s) arrived %d times" % (n, src, len(got)))
            continue
        eml, rcpt_tos = got[0]
        if sorted(rcpt_tos) != rcpts:
            fail("message %d: recipients %s, sent to %s" % (n, rcpt_tos, rcpts))
        with open(eml, "rb") as f:
            raw = f.read()
        head, body = split_message(raw)
        stamps = header_values(head, b"x-mqscan")
        if len(stamps) != 1 or b"forger" in stamps[0]:
            fail("message %d: X-mqscan headers %r" % (n, stamps))
            continue
        if kind == "clean":
            if not stamps[0].startswith(b"clean"):
                fail("message %d (%s): clean message stamped %r" % (n, src, stamps[0]))
            if n in queued:
                names, df = queued[n]
                # The sink gets the df after the header block, in CRLF.
                if not same_body(raw, b"\r\n" + df.replace(b"\n", b"\r\n")):
                    fail("message %d (%s): body differs from the queued df" % (n, src))
            else:
                with open(os.path.join(a.sent, "sent", "%d.eml" % n), "rb") as f:
                    sent_head, sent_body = split_message(f.read())
                if not same_body(b"\r\n\r\n" + body, b"\r\n\r\n" + sent_body):
                    fail("message %d (%s): body changed" % (n, src))
                names = header_names(sent_head)
            # sendmail drops a Return-Path that arrives over SMTP (RFC 5321
            # 4.4) and adds its own at final delivery, and drops
            # Content-Length (a mailbox artefact) and, for qf flag b, Bcc
            # when it delivers.
            # The gateway replaces every X-Spam-* and X-mqscan* header of
            # mail from outside with its own spam verdict.
            names = [h for h in names
                     if h not in (b"return-path", b"content-length", b"bcc")
                     and not h.startswith(b"x-mqscan") and not h.startswith(b"x-spam-")]
            scl = header_values(head, b"x-mqscan-scl")
            if len(scl) != 1 or not scl[0].strip().isdigit():
                fail("message %d (%s): X-mqscan-SCL headers %r" % (n, src, scl))
            if not is_subsequence(names, header_names(head)):
                fail("message %d (%s): headers lost or reordered" % (n, src))
            clean += 1
        else:
            if not stamps[0].startswith(b"cleaned"):
                fail("message %d (%s): %s message stamped %r" % (n, src, kind, stamps[0]))
            if scan(a.scanfile, a.sigs, eml) != 0:
                fail("message %d (%s): delivered copy is still not clean" % (n, src))
            if kind == "infected":
                infected += 1
            else:
                removed += 1

    # Quarantine: one entry per infected message, each still infected.
    entries = []
    for day in sorted(os.listdir(a.quarantine)):
        if day == "tmp":
            continue
        for entry in os.listdir(os.path.join(a.quarantine, day)):
            entries.append(os.path.join(a.quarantine, day, entry))
    want = sum(1 for k, _, _ in manifest.values() if k in ("infected", "removed"))
    if len(entries) != want:
        fail("quarantine holds %d entries, expected %d" % (len(entries), want))
    for e in entries:
        with open(os.path.join(e, "qf"), "rb") as f:
            qf = f.read()
        with open(os.path.join(e, "df"), "rb") as f:
            df = f.read()
        with open(os.path.join(e, "meta"), "rb") as f:
            meta = f.read()
        if not meta.startswith(b"mqscan-quarantine ") or not meta.endswith(b"end\n"):
            fail("%s: meta file incomplete" % e)
        m = re.search(rb"^sender: test-(\d+)@example\.com$", meta, re.M)
        if m is None or int(m.group(1)) not in manifest:
            fail("%s: quarantined message not one of ours" % e)
            continue
        if manifest[int(m.group(1))][0] != "infected":
            continue
        with tempfile.NamedTemporaryFile(suffix=".eml") as t:
            t.write(qf_headers(qf) + b"\n" + df)
            t.flush()
            if scan(a.scanfile, a.sigs, t.name) != 1:
                fail("%s: quarantined original is not infected" % e)

    left = [f for f in os.listdir(a.incoming) if f[:2] in ("qf", "df")]
    if left:
        fail("incoming queue not empty: %s" % left[:10])
    want_held = {n for n, (k, _, _) in manifest.items() if k == "held"}
    held = set()
    for h in os.listdir(a.hold):
        if not h.startswith("qf"):
            continue
        with open(os.path.join(a.hold, h), "rb") as f:
            m = re.search(rb"^S<test-(\d+)@example\.com>$", f.read(), re.M)
        with open(os.path.join(a.hold, h[2:] + ".reason")) as f:
            reason = f.read().replace("\n", " ")
        n = int(m.group(1)) if m else None
        if n not in want_held:
            fail("held unexpectedly: %s" % reason)
        elif "reason: unscannable" not in reason:
            fail("message %d held for the wrong reason: %s" % (n, reason))
        held.add(n)
    for n in sorted(want_held - held):
        fail("message %d (%s) should be held but is not" % (n, manifest[n][1]))

    for msg in failures[:50]:
        print("FAIL:", msg)
    if len(failures) > 50:
        print("... and %d more failures" % (len(failures) - 50))
    print("e2e: %d messages sent: %d clean delivered intact, %d infected and %d removed by "
          "policy delivered cleaned and quarantined, %d held; %d failures"
          % (len(manifest), clean, infected, removed, len(held), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
