#!/usr/bin/python3
"""gen-messages.py - a deterministic set of test messages for "make bench".

usage: gen-messages.py [--seed N] [--count N] OUTDIR

Writes OUTDIR/NNNNNN.eml (LF line ends) and OUTDIR/manifest.tsv, one line
per message: number, kind, size in bytes, Message-ID, attachment. Message
N depends only on the seed and N, so the first 1,000 messages of a set of
50,000 are the set of 1,000, byte for byte.

Sizes are log-uniform between 2 and 50 KB. About 85% are text (plain, or
plain and HTML alternatives), about 10% carry a clean attachment (a zip of
text, a CSV, a PDF-looking file of random bytes, a binary blob), about 5%
are infected: the EICAR test file (attached as is or zipped) or one of the
ClamAV test files in /usr/share/clamav-testfiles (those under 40 KB). The
EICAR string is assembled here, never stored in the tree.
"""
import argparse
import base64
import email.utils
import io
import os
import random
import sys
import zipfile

TESTFILES = "/usr/share/clamav-testfiles"
DOMAINS = ["example.com", "example.net", "example.org", "mail.example.co.uk",
           "corp.example.de", "lists.example.fr"]
FIRST = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
         "ivan", "judy", "mallory", "oscar", "peggy", "trent", "victor", "wendy"]
SYLLABLES = ["ba", "con", "de", "fi", "ga", "hu", "in", "jo", "ka", "lo", "ma",
             "ne", "or", "pra", "qui", "re", "sta", "ti", "um", "ver", "wa",
             "xe", "yo", "ze", "ment", "tion", "ly", "er", "ing", "ous"]
COMMON = ("the of and to in is you that it he was for on are as with his they "
          "at be this have from or one had by word but not what all were we "
          "when your can said there use an each which she do how their if will "
          "up other about out many then them these so some her would make like "
          "him into time has look two more write go see number no way could "
          "people my than first water been call who oil its now find long down "
          "day did get come made may part meeting report invoice project budget "
          "schedule customer order delivery please thanks regards attached").split()
# Start of every message's Date: a fixed moment, one minute per message.
EPOCH = 1767225600   # 2026-01-01 00:00:00 UTC


def eicar():
    return (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!"
            + b"$H+H*")


def testfiles():
    try:
        names = sorted(os.listdir(TESTFILES))
    except OSError:
        return []
    return [n for n in names
            if os.path.isfile(os.path.join(TESTFILES, n))
            and os.path.getsize(os.path.join(TESTFILES, n)) < 40000]


def word(rng):
    if rng.random() < 0.7:
        return rng.choice(COMMON)
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4)))


def sentence(rng):
    words = [word(rng) for _ in range(rng.randint(5, 18))]
    words[0] = words[0].capitalize()
    return " ".join(words) + rng.choice([".", ".", ".", "?", "!"])


def paragraphs(rng, size):
    """Text of about size bytes, wrapped at 72 columns."""
    out, n = [], 0
    while n < size:
        para, line = [], ""
        for _ in range(rng.randint(2, 7)):
            for w in sentence(rng).split():
                if len(line) + len(w) + 1 > 72:
                    para.append(line)
                    line = w
                else:
                    line = (line + " " + w) if line else w
        para.append(line)
        text = "\n".join(para)
        out.append(text)
        n += len(text) + 2
    return "\n\n".join(out) + "\n"


def html_of(text):
    paras = text.strip().split("\n\n")
    body = "\n".join("<p>%s</p>" % p.replace("&", "&amp;").replace("<", "&lt;")
                     for p in paras)
    return ("<html><head><meta charset=\"utf-8\"></head><body>\n%s\n</body></html>\n"
            % body)


def b64(data):
    return base64.encodebytes(data).decode("ascii")


def zipped(name, data):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 12, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, data)
    return buf.getvalue()


def clean_attachment(rng, size):
    kind = rng.choice(["zip", "csv", "pdf", "bin"])
    if kind == "zip":
        text = paragraphs(rng, size * 3).encode()
        return "notes-%d.zip" % rng.randint(1, 999), "application/zip", zipped("notes.txt", text)
    if kind == "csv":
        rows = ["date,item,quantity,price"]
        while sum(len(r) + 1 for r in rows) < size:
            rows.append("2026-%02d-%02d,%s,%d,%d.%02d" % (
                rng.randint(1, 12), rng.randint(1, 28), word(rng), rng.randint(1, 500),
                rng.randint(1, 9999), rng.randint(0, 99)))
        return "figures.csv", "text/csv", ("\n".join(rows) + "\n").encode()
    if kind == "pdf":
        data = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + rng.randbytes(max(size - 40, 16)) + b"\n%%EOF\n"
        return "scan-%d.pdf" % rng.randint(1, 9999), "application/pdf", data
    return "data-%d.dat" % rng.randint(1, 9999), "application/octet-stream", rng.randbytes(size)


def infected_attachment(rng, files):
    choice = rng.random()
    if choice < 0.4 or not files:
        return "eicar.com", "application/octet-stream", eicar()
    if choice < 0.6:
        return "eicar.zip", "application/zip", zipped("eicar.com", eicar())
    name = rng.choice(files)
    with open(os.path.join(TESTFILES, name), "rb") as f:
        return name, "application/octet-stream", f.read()


def message(seed, n, files):
    rng = random.Random("%d:%d" % (seed, n))
    size = int(2048 * (25 ** rng.random()))        # 2 KB .. 50 KB, log-uniform
    r = rng.random()
    kind = "infected" if r < 0.05 else "attach" if r < 0.15 else "text"
    sender = "%s.%s@%s" % (rng.choice(FIRST), word(rng), rng.choice(DOMAINS))
    rcpt = "%s@%s" % (rng.choice(FIRST), rng.choice(DOMAINS))
    msgid = "<gen-%d-%d@bench.mqscan.test>" % (seed, n)
    headers = [
        "From: %s" % sender,
        "To: %s" % rcpt,
        "Subject: %s" % sentence(rng)[:-1][:70],
        "Date: %s" % email.utils.formatdate(EPOCH + 60 * n),
        "Message-ID: %s" % msgid,
        "MIME-Version: 1.0",
    ]
    boundary = "=_bench_%d_%08x" % (n, rng.getrandbits(32))
    attachment = ""
    if kind == "text":
        text = paragraphs(rng, size)
        if rng.random() < 0.5:
            headers.append("Content-Type: text/plain; charset=us-ascii")
            body = text
        else:
            alt = "%s_alt" % boundary
            headers.append("Content-Type: multipart/alternative; boundary=\"%s\"" % alt)
            body = ("This is a multi-part message in MIME format.\n\n"
                    "--%s\nContent-Type: text/plain; charset=us-ascii\n\n%s\n"
                    "--%s\nContent-Type: text/html; charset=utf-8\n\n%s\n--%s--\n"
                    % (alt, text, alt, html_of(text), alt))
    else:
        if kind == "attach":
            name, ctype, data = clean_attachment(rng, max(size * 3 // 5, 512))
            text = paragraphs(rng, max(size - len(data) * 4 // 3, 300))
        else:
            name, ctype, data = infected_attachment(rng, files)
            text = paragraphs(rng, max(size - len(data) * 4 // 3, 300))
        attachment = name
        headers.append("Content-Type: multipart/mixed; boundary=\"%s\"" % boundary)
        body = ("This is a multi-part message in MIME format.\n\n"
                "--%s\nContent-Type: text/plain; charset=us-ascii\n\n%s\n"
                "--%s\nContent-Type: %s; name=\"%s\"\n"
                "Content-Transfer-Encoding: base64\n"
                "Content-Disposition: attachment; filename=\"%s\"\n\n%s\n--%s--\n"
                % (boundary, text, boundary, ctype, name, name, b64(data), boundary))
    raw = ("\n".join(headers) + "\n\n" + body).encode()
    return kind, msgid, attachment, raw


def main():
    ap = argparse.ArgumentParser(description="deterministic test messages")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("outdir")
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    files = testfiles()
    counts = {}
    with open(os.path.join(a.outdir, "manifest.tsv"), "w") as manifest:
        for n in range(1, a.count + 1):
            kind, msgid, attachment, raw = message(a.seed, n, files)
            with open(os.path.join(a.outdir, "%06d.eml" % n), "wb") as f:
                f.write(raw)
            manifest.write("%d\t%s\t%d\t%s\t%s\n" % (n, kind, len(raw), msgid, attachment))
            counts[kind] = counts.get(kind, 0) + 1
    print("gen-messages: %d messages in %s (%s)" % (
        a.count, a.outdir, ", ".join("%d %s" % (counts[k], k) for k in sorted(counts))),
        file=sys.stderr)


if __name__ == "__main__":
    main()
