#!/usr/bin/python3
"""quarantine_tools.py - an independent reading of the quarantine, for
quarantine-tools.sh to hold mqscan-quarantine's output against.

usage: quarantine_tools.py list QDIR [--since YYYY-MM-DD] [--sender GLOB]
                                     [--reason TEXT] [--oldest-first]
           print what "mqscan-quarantine list" must print for QDIR
       quarantine_tools.py show QDIR ID SHOWFILE
           check "mqscan-quarantine show ID" output saved in SHOWFILE
       quarantine_tools.py release QDIR ID OUTDIR QUEUEID [--to ADDR]
           check the outgoing qfQUEUEID/dfQUEUEID against the entry
       quarantine_tools.py backdate QDIR ID DAYS [--keep-time]
           move the entry into the day directory DAYS days back and set its
           meta time (and id line) to match; print the new ID
       quarantine_tools.py snapshot DIR...
           print every path under DIR with type, size, mode and mtime
Exit 0 if everything matched; differences on stdout.
"""
import calendar
import datetime
import fnmatch
import hashlib
import os
import re
import sys
import time

ID_RE = re.compile(r"^[0-9]{8}-[A-Za-z0-9]{1,64}-[A-Za-z0-9]{6}$")


def entry_dir(qdir, ident):
    day, rest = ident.split("-", 1)
    return os.path.join(qdir, day, rest)


def read_meta(path):
    lines = open(path, "rb").read().decode("utf-8").split("\n")
    assert lines[0] == "mqscan-quarantine 1", path
    assert lines[-2:] == ["end", ""], path
    meta = {}
    for line in lines[1:-2]:
        key, value = line.split(": ", 1)
        meta.setdefault(key, []).append(value)
    return meta


def one(meta, key):
    return meta.get(key, [""])[0]


def entries(qdir):
    for day in sorted(os.listdir(qdir)):
        if not re.fullmatch(r"[0-9]{8}", day):
            continue
        for name in sorted(os.listdir(os.path.join(qdir, day))):
            yield day + "-" + name, os.path.join(qdir, day, name)


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def cmd_list(qdir, args):
    since, sender, reason, oldest = 0, None, None, False
    i = 0
    while i < len(args):
        if args[i] == "--since":
            since = calendar.timegm(time.strptime(args[i + 1], "%Y-%m-%d"))
            i += 2
        elif args[i] == "--sender":
            sender = args[i + 1].lower()
            i += 2
        elif args[i] == "--reason":
            reason = args[i + 1].lower()
            i += 2
        elif args[i] == "--oldest-first":
            oldest = True
            i += 1
        else:
            raise SystemExit("bad argument " + args[i])
    rows = []
    for ident, path in entries(qdir):
        meta = read_meta(os.path.join(path, "meta"))
        t = int(one(meta, "time"))
        if t < since:
            continue
        if sender is not None and not fnmatch.fnmatchcase(one(meta, "sender").lower(), sender):
            continue
        if reason is not None and reason not in one(meta, "reason").lower():
            continue
        rows.append((t, ident, "\t".join([ident, iso(t), one(meta, "action"), one(meta, "reason"),
                                          one(meta, "sender") or "<>",
                                          one(meta, "subject").lstrip()])))
    rows.sort(reverse=not oldest)
    for row in rows:
        print(row[2])
    return 0


def qf_records(data):
    """qf bytes -> list of records (type byte + value, continuation lines joined)."""
    recs = []
    for line in data.split(b"\n"):
        if line == b"":
            continue
        if line[:1] in (b" ", b"\t"):
            recs[-1] += b"\n" + line
        else:
            recs.append(line)
    assert recs[-1] == b".", "no end record"
    return recs


def shown_headers(recs, names):
    """The H records called one of names (any case), in message order, as
    show prints them: "Name: value", folds joined, made printable."""
    wanted = [n.lower().encode() for n in names]
    out = []
    for r in recs:
        if r[:1] != b"H":
            continue
        v = r[1:]
        if v[:1] == b"?":
            v = v[v.index(b"?", 1) + 1:]
        hname, _, hval = v.partition(b":")
        if hname.lower() not in wanted:
            continue
        hval = re.sub(rb"\n[ \t]", b"  ", hval.lstrip(b" \t"))
        text = (hname + b": " + hval).decode("utf-8", "replace")
        out.append("".join("?" if (ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 or c == "\ufffd")
                           else c for c in text))
    return out


def cmd_show(qdir, ident, showfile):
    path = entry_dir(qdir, ident)
    meta = read_meta(os.path.join(path, "meta"))
    got = open(showfile, encoding="utf-8").read().split("\n")
    assert got[-1] == ""
    got = got[:-1]
    want = ["id: " + ident, "queue-id: " + one(meta, "queue-id"),
            "time: %s (%s)" % (iso(int(one(meta, "time"))), one(meta, "time"))]
    for key in ("reason", "action", "direction"):
        want.append("%s: %s" % (key, one(meta, key)))
    want.append("sender: " + (one(meta, "sender") or "<>"))
    want += ["recipient: " + r for r in meta.get("recipient", [])]
    want.append("subject: " + one(meta, "subject").lstrip())
    want += ["finding: " + f for f in meta.get("finding", [])]
    want += ["part: " + p for p in meta.get("part", [])]
    for rel in meta.get("released", []):
        t, user, qid, to = rel.split(" ")
        want.append("released: %s by %s as %s to %s" % (
            iso(int(t)), user, qid, "the original recipients" if to == "-" else to))
    recs = qf_records(open(os.path.join(path, "qf"), "rb").read())
    want += ["header: " + h for h in
             shown_headers(recs, ("From", "To", "Cc", "Subject", "Date", "Message-ID"))]
    for name in sorted(os.listdir(path)):
        st = os.lstat(os.path.join(path, name))
        want.append("file: %s %d" % (name, st.st_size))
    if got != want:
        print("show %s differs:" % ident)
        for i in range(max(len(got), len(want))):
            g = got[i] if i < len(got) else "(none)"
            w = want[i] if i < len(want) else "(none)"
            print(("   " if g == w else "!! ") + "got  " + g)
            if g != w:
                print("!! want " + w)
        return 1
    return 0


def normalized(recs):
    """What MQ_QF_FORMAT_NEW_ENTRY does: K0, N0, no I or d records."""
    out = []
    for r in recs:
        if r[:1] in (b"I", b"d"):
            continue
        out.append(b"K0" if r[:1] == b"K" else b"N0" if r[:1] == b"N" else r)
    return out


def cmd_release(qdir, ident, outdir, qid, args):
    to = args[1] if args[:1] == ["--to"] else None
    path = entry_dir(qdir, ident)
    problems = []
    df_in = open(os.path.join(path, "df"), "rb").read()
    df_out = open(os.path.join(outdir, "df" + qid), "rb").read()
    if df_in != df_out:
        problems.append("df differs (%d vs %d bytes)" % (len(df_in), len(df_out)))
    recs_in = normalized(qf_records(open(os.path.join(path, "qf"), "rb").read()))
    recs_out = qf_records(open(os.path.join(outdir, "qf" + qid), "rb").read())
    if to is None:
        if recs_in != recs_out:
            problems.append("qf differs beyond K/N/I/d:\n  " +
                            "\n  ".join(repr(r) for r in recs_out if r not in recs_in))
    else:
        rcpt = [r for r in recs_out if r[:1] in (b"R", b"Q", b"r")]
        if rcpt != [b"RPFD:<" + to.encode() + b">"]:
            problems.append("recipients are %r" % rcpt)
        rest_in = [r for r in recs_in if r[:1] not in (b"R", b"Q", b"r")]
        rest_out = [r for r in recs_out if r[:1] not in (b"R", b"Q", b"r")]
        if rest_in != rest_out:
            problems.append("records other than recipients differ")
        # The recipient takes the place of the first original one.
        first = next(i for i, r in enumerate(recs_in) if r[:1] in (b"R", b"Q", b"r"))
        if recs_out[first] != rcpt[0]:
            problems.append("recipient record moved")
    for p in problems:
        print("release %s -> %s: %s" % (ident, qid, p))
    return 1 if problems else 0


def cmd_backdate(qdir, ident, days, keep_time):
    old = entry_dir(qdir, ident)
    day, rest = ident.split("-", 1)
    when = int(time.time()) - days * 86400
    newday = time.strftime("%Y%m%d", time.gmtime(when))
    newid = newday + "-" + rest
    os.makedirs(os.path.join(qdir, newday), mode=0o700, exist_ok=True)
    new = os.path.join(qdir, newday, rest)
    os.rename(old, new)
    mpath = os.path.join(new, "meta")
    lines = open(mpath, "rb").read().split(b"\n")
    for i, line in enumerate(lines):
        if line.startswith(b"id: "):
            lines[i] = b"id: " + newid.encode()
        elif line.startswith(b"time: ") and not keep_time:
            lines[i] = b"time: %d" % when
    with open(mpath, "wb") as f:
        f.write(b"\n".join(lines))
    try:
        os.rmdir(os.path.join(qdir, day))
    except OSError:
        pass
    print(newid)
    return 0


def cmd_snapshot(dirs):
    for top in dirs:
        for root, dnames, fnames in os.walk(top):
            dnames.sort()
            for name in sorted(dnames + fnames):
                p = os.path.join(root, name)
                st = os.lstat(p)
                digest = ""
                if os.path.isfile(p) and not os.path.islink(p):
                    digest = hashlib.sha256(open(p, "rb").read()).hexdigest()[:16]
                print(p, oct(st.st_mode), st.st_size, st.st_mtime_ns, st.st_nlink, digest)
    return 0


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "list":
        return cmd_list(args[0], args[1:])
    if cmd == "show":
        return cmd_show(*args[:3])
    if cmd == "release":
        return cmd_release(args[0], args[1], args[2], args[3], args[4:])
    if cmd == "backdate":
        return cmd_backdate(args[0], args[1], int(args[2]), "--keep-time" in args[3:])
    if cmd == "snapshot":
        return cmd_snapshot(args)
    raise SystemExit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
