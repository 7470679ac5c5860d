#!/usr/bin/python3
"""numbered.py - numbered test messages for the load tests: send, then check.

usage: numbered.py send PORT N
       numbered.py check SINK N SCANFILE SIGDIR QUARANTINE LABEL

send: N messages over SMTP, message i with an "X-Test-Number: i" header and
a body of i % 3000 filler bytes; every 20th carries the EICAR test string
(built here, never stored in the tree).

check: reads the sink's .eml files and counts, per number, how often it
arrived; every message must arrive exactly once (none lost, none
duplicated), stamped by mqscand exactly once (none unscanned), and no
infected one may arrive still infected (mq-scanfile with the test
signatures). Prints one summary line and exits 1 on any failure.
"""
import os
import re
import smtplib
import subprocess
import sys

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def send(port, n):
    s = smtplib.SMTP("127.0.0.1", port)
    for i in range(1, n + 1):
        body = b"Message %d of the load test.\r\n" % i + (b"x" * (i % 3000)) + b"\r\n"
        if i % 20 == 0:
            body += EICAR + b"\r\n"
        data = (b"From: load-%d@example.com\r\nTo: rcpt@example.net\r\nSubject: load %d\r\n"
                b"X-Test-Number: %d\r\n\r\n" % (i, i, i)) + body
        s.sendmail("load-%d@example.com" % i, ["rcpt@example.net"], data)
    s.quit()


def check(sink, n, scanfile, sigs, quarantine, label):
    seen, unscanned, infected_files = {}, [], []
    for name in os.listdir(sink):
        if not name.endswith(".eml"):
            continue
        raw = open(os.path.join(sink, name), "rb").read()
        head = raw.split(b"\r\n\r\n", 1)[0]
        m = re.search(rb"^X-Test-Number: (\d+)", head, re.M)
        if m is None:
            continue
        i = int(m.group(1))
        seen[i] = seen.get(i, 0) + 1
        if len(re.findall(rb"^X-mqscan: ", head, re.M | re.I)) != 1:
            unscanned.append(i)
        if i % 20 == 0:
            infected_files.append(os.path.join(sink, name))
    lost = [i for i in range(1, n + 1) if i not in seen]
    dups = sum(c - 1 for c in seen.values() if c > 1)
    still = 0
    for k in range(0, len(infected_files), 200):
        r = subprocess.run([scanfile, sigs] + infected_files[k:k + 200], stdout=subprocess.PIPE)
        still += r.stdout.count(b": INFECTED")
    entries = sum(len(os.listdir(os.path.join(quarantine, d))) for d in os.listdir(quarantine)
                  if d != "tmp")
    print("%s: %d sent, %d arrived, %d lost, %d duplicated, %d unscanned, "
          "%d arrived infected; quarantine holds %d entries for %d infected messages"
          % (label, n, len(seen), len(lost), dups, len(unscanned), still, entries, n // 20))
    if lost:
        print("lost:", lost[:20])
    return 1 if lost or unscanned or still or dups else 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "send":
        send(int(sys.argv[2]), int(sys.argv[3]))
    elif len(sys.argv) == 8 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2], int(sys.argv[3]), *sys.argv[4:8]))
    else:
        sys.exit(__doc__)
