#!/usr/bin/python3
"""flood.py - a worm flood: many copies of a few real queued messages.

usage: flood.py send PORT
       flood.py clone QUEUE STAGE N
       flood.py drop STAGE QUEUE
       flood.py check OUTQUEUE N

send: 20 templates over SMTP to the incoming sendmail: 10 carry a worm (an
attachment from /usr/share/clamav-testfiles, or EICAR), 10 are clean, of
2 to 40 KB. Each has an "X-Flood-Template: k" header.

clone: N copies of the templates that sendmail queued in QUEUE (qf and df
byte for byte, new queue IDs), written to STAGE (same filesystem as the
queue), in template order round robin.

drop: renames every df, then every qf, from STAGE into QUEUE: the flood
arrives at once.

check: every message of the flood is in OUTQUEUE exactly once (N qf files
carrying an X-Flood-Template header), each stamped by mqscand exactly once
(one X-mqscan header line in its qf); prints the infected ones' df paths
(for the virus scan) to stdout.
"""
import base64
import os
import re
import smtplib
import sys

TESTFILES = "/usr/share/clamav-testfiles"
WORMS = ["clam.exe", "clam.zip", "clam.7z", "clam.exe.rtf", "clam.cab", "clam.arj",
         "clam.exe.bz2", "clam-upx.exe", "clam.impl.zip", None]
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def template(k):
    head = ("From: worm-%d@outside.example\r\nTo: victim@example.net\r\n"
            "Subject: flood %d\r\nMessage-ID: <flood-%d@outside.example>\r\n"
            "X-Flood-Template: %d\r\nMIME-Version: 1.0\r\n" % (k, k, k, k)).encode()
    lines = 40 + 84 * max(k - 10, 0)
    text = (b"Line %d of a flood message, to make it longer.\r\n" * lines) % tuple(range(lines))
    if k >= 10:
        return head + b"Content-Type: text/plain\r\n\r\n" + text
    name = WORMS[k]
    data = open(os.path.join(TESTFILES, name), "rb").read() if name else EICAR
    b64 = base64.encodebytes(data).replace(b"\n", b"\r\n")
    return (head + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
            b"Content-Type: text/plain\r\n\r\n" + text[:2000] + b"\r\n--b\r\n"
            b"Content-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n"
            b'Content-Disposition: attachment; filename="%s"\r\n\r\n' % (name or "eicar.com").encode()
            + b64 + b"--b--\r\n")


def send(port):
    s = smtplib.SMTP("127.0.0.1", port)
    for k in range(20):
        s.sendmail("worm-%d@outside.example" % k, ["victim@example.net"], template(k))
    s.quit()


def clone(queue, stage, n):
    ids = sorted(f[2:] for f in os.listdir(queue) if f.startswith("qf"))
    pairs = []
    for i in ids:
        qf = open(os.path.join(queue, "qf" + i), "rb").read()
        df = open(os.path.join(queue, "df" + i), "rb").read()
        pairs.append((i, qf, df))
    for c in range(n):
        i, qf, df = pairs[c % len(pairs)]
        new = "%s%06d" % (i[:8], c)
        with open(os.path.join(stage, "df" + new), "wb") as f:
            f.write(df)
        with open(os.path.join(stage, "qf" + new), "wb") as f:
            f.write(qf)
        os.chmod(os.path.join(stage, "df" + new), 0o600)
        os.chmod(os.path.join(stage, "qf" + new), 0o600)


def drop(stage, queue):
    names = os.listdir(stage)
    for kind in ("df", "qf"):
        for f in names:
            if f.startswith(kind):
                os.rename(os.path.join(stage, f), os.path.join(queue, f))


def check(out, n):
    found, stamped, infected = 0, 0, []
    for f in os.listdir(out):
        if not f.startswith("qf"):
            continue
        qf = open(os.path.join(out, f), "rb").read()
        m = re.search(rb"^H[^\n]*X-Flood-Template: (\d+)", qf, re.M)
        if m is None:
            continue
        found += 1
        if len(re.findall(rb"^H[^\n]*X-mqscan:", qf, re.M | re.I)) == 1:
            stamped += 1
        if int(m.group(1)) < 10:
            infected.append(os.path.join(out, "df" + f[2:]))
    for p in infected:
        print(p)
    print("flood check: %d of %d in the outgoing queue, %d stamped once" % (found, n, stamped),
          file=sys.stderr)
    return 0 if found == n and stamped == n else 1


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[:1] == ["send"] and len(a) == 2:
        send(int(a[1]))
    elif a[:1] == ["clone"] and len(a) == 4:
        clone(a[1], a[2], int(a[3]))
    elif a[:1] == ["drop"] and len(a) == 3:
        drop(a[1], a[2])
    elif a[:1] == ["check"] and len(a) == 3:
        sys.exit(check(a[1], int(a[2])))
    else:
        sys.exit(__doc__)
