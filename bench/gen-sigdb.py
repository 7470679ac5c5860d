#!/usr/bin/python3
"""gen-sigdb.py - a synthetic ClamAV database of production size.

usage: gen-sigdb.py [--md5 N] [--sha256 N] [--ndb N] [--seed N]
                    [--testsigs DIR] OUTDIR

Writes into OUTDIR (created; it must not be inside the source tree by
convention, the databases are hundreds of megabytes):

  synth.hdb   N MD5 file hashes      MD5:size:Name          (default 3,000,000)
  synth.hsb   N SHA256 file hashes   SHA256:size:Name       (default 1,000,000)
  synth.ndb   N body signatures      Name:type:offset:hex   (default 100,000)
  mqscan-test.*  the real test signatures from --testsigs, so that EICAR and
              the ClamAV test files are still detected
  sigdb.stamp the parameters, so a caller can tell whether OUTDIR is current

The official database (main + daily) holds about 8 million signatures, most
of them file hashes, and some 100,000 body patterns; this one has the same
order of magnitude so load time, compile time, memory and the cost of
hashing every scanned object can be measured without a download.

Everything comes from one seeded random generator: the same arguments give
the same files, byte for byte. Hash sizes follow a log-normal spread around
100 KB (as the sizes of real samples do), so almost every object scanned
has hash signatures of its size and gets hashed. Body signatures mix the
forms the real database uses: plain hex, ?? and nibble wildcards,
alternatives (aa|bb), bounded gaps {n-m}, {n} and unbounded *; offsets *,
absolute, EP+n and EOF-n; target types any, PE, OLE2, HTML, mail, ASCII text,
ELF and PDF. Patterns for HTML, mail and text are lower-case words, the way
libclamav normalizes such content, so they cost on mail what real ones do.
None is meant to match anything: each carries random bytes or a random
identifier.

The directory is built beside OUTDIR and renamed into place, so an
interrupted run never leaves a half-written database behind.
"""
import argparse
import math
import os
import random
import shutil
import sys

VERSION = 1

PLATFORMS = ["Win", "Win", "Win", "Doc", "Xls", "Html", "Js", "Pdf", "Email", "Unix", "Osx",
             "Andr", "Java", "Txt", "Multios"]
CATEGORIES = ["Trojan", "Trojan", "Malware", "Dropper", "Downloader", "Exploit", "Worm",
              "Virus", "Phishing", "Adware", "Ransomware", "Coinminer", "Packed", "Spyware"]
FAMILIES = ["Agent", "Generic", "Emotet", "Qakbot", "Zbot", "Dridex", "Ursnif", "Remcos",
            "AgentTesla", "Formbook", "Lokibot", "Nanocore", "Njrat", "Vbinject", "Ramnit",
            "Sality", "Virut", "Mydoom", "Netsky", "Bagle", "Valyria", "Sload", "Kryptik",
            "Heuristic", "Obfuscated", "Macro", "Cve_2017_11882", "Iframe", "Redirector"]

# Target types of the extended format, weighted roughly as in daily.ndb.
# (type, weight, textual): textual types see normalized lower-case text.
TARGETS = [(0, 40, False), (1, 30, False), (2, 5, False), (3, 9, True), (4, 2, True),
           (7, 9, True), (6, 2, False), (10, 3, False)]

WORDS = ["function", "eval(", "unescape(", "document.write(", "var ", "iframe", "src=",
         "http://", "https://", "window.location", "fromcharcode", "charcodeat", "settimeout(",
         "%u", "\\x", "createobject(", "wscript.shell", "powershell", "-enc ", "cmd.exe /c ",
         "base64", "<script", "</script>", "style=", "display:none", "href=", "onload=",
         "password", "verify your account", "invoice", "payment", "click here", ".exe",
         "autoopen", "shell(", "chr(", "activexobject", "xmlhttp", ".open(", "subject: ",
         "content-type: ", "attachment", "<?php", "gzinflate(", "str_rot13(", "atob("]


def sig_name(rng, serial):
    return "%s.%s.%s-%d-%d" % (rng.choice(PLATFORMS), rng.choice(CATEGORIES),
                               rng.choice(FAMILIES), 9000000 + serial, rng.randrange(3))


def sample_size(rng):
    # Log-normal around 100 KB; mu = ln(100000), sigma = 1.6.
    return max(64, min(64 * 1024 * 1024, int(math.exp(rng.gauss(math.log(100000), 1.6)))))


def write_hashes(path, rng, count, nbytes, serial0):
    """count lines of a random nbytes-byte hash, a size and a name."""
    chunk = 50000
    with open(path, "w", encoding="ascii") as f:
        done = 0
        while done < count:
            n = min(chunk, count - done)
            blob = rng.randbytes(n * nbytes).hex()
            step = 2 * nbytes
            lines = []
            for i in range(n):
                lines.append("%s:%d:%s\n" % (blob[i * step:(i + 1) * step], sample_size(rng),
                                             sig_name(rng, serial0 + done + i)))
            f.write("".join(lines))
            done += n


def random_ident(rng):
    letters = "abcdefghijklmnopqrstuvwxyz0123456789_"
    return "".join(rng.choice(letters) for _ in range(rng.randrange(8, 14)))


def text_segment(rng):
    """A static piece of lower-case text: a word or two and an identifier that
    no real content carries."""
    parts = [rng.choice(WORDS)]
    if rng.random() < 0.5:
        parts.append(rng.choice(WORDS))
    parts.insert(rng.randrange(len(parts) + 1), random_ident(rng))
    return "".join(parts).encode().hex()


def binary_segment(rng, lo, hi):
    return rng.randbytes(rng.randrange(lo, hi + 1)).hex()


def inner_wildcards(rng, hexstr):
    """Puts ?? , nibble and (aa|bb) wildcards inside a static run, never in its
    first or last 3 bytes (libclamav wants static bytes at both ends)."""
    nbytes = len(hexstr) // 2
    if nbytes < 10:
        return hexstr
    out = [hexstr[i:i + 2] for i in range(0, len(hexstr), 2)]
    for i in rng.sample(range(3, nbytes - 3), rng.randrange(1, 4)):
        kind = rng.random()
        if kind < 0.6:
            out[i] = "??"
        elif kind < 0.8:
            out[i] = out[i][0] + "?"
        else:
            out[i] = "(%s|%s)" % (out[i], rng.randbytes(1).hex())
    return "".join(out)


def body_signature(rng, serial):
    r = rng.random() * sum(w for _, w, _ in TARGETS)
    for ttype, weight, textual in TARGETS:
        r -= weight
        if r < 0:
            break

    def segment():
        return text_segment(rng) if textual else binary_segment(rng, 6, 24)

    form = rng.random()
    if form < 0.40:                      # plain hex
        if textual:
            hexsig = text_segment(rng) + text_segment(rng)
        else:
            hexsig = binary_segment(rng, 16, 48)
    elif form < 0.65:                    # ??, nibbles, alternatives
        hexsig = inner_wildcards(rng, segment() + (binary_segment(rng, 8, 16) if not textual
                                                   else text_segment(rng)))
    elif form < 0.85:                    # bounded gaps
        n = rng.randrange(1, 40)
        gap = rng.choice(["{%d-%d}" % (n, n + rng.randrange(1, 200)), "{%d}" % (n + 1),
                          "{-%d}" % (n + 2)])
        hexsig = segment() + gap + segment()
        if rng.random() < 0.3:
            hexsig += "{%d-%d}" % (n, n + 64) + segment()
    else:                                # unbounded gap
        hexsig = segment() + "*" + segment()

    offset = "*"
    o = rng.random()
    if ttype == 1 and o < 0.3:
        offset = "EP+%d" % rng.randrange(0, 512)
    elif o < 0.08:
        offset = "%d" % rng.randrange(0, 4096)
    elif o < 0.12:
        offset = "EOF-%d" % rng.randrange(len(hexsig) // 2 + 16, 8192)
    return "%s:%d:%s:%s\n" % (sig_name(rng, serial), ttype, offset, hexsig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--md5", type=int, default=3000000)
    ap.add_argument("--sha256", type=int, default=1000000)
    ap.add_argument("--ndb", type=int, default=100000)
    ap.add_argument("--seed", type=int, default=20261124)
    ap.add_argument("--testsigs", help="directory with the real test signatures to include")
    ap.add_argument("outdir")
    a = ap.parse_args()

    stamp = "gen-sigdb %d seed=%d md5=%d sha256=%d ndb=%d testsigs=%s\n" % (
        VERSION, a.seed, a.md5, a.sha256, a.ndb, "yes" if a.testsigs else "no")
    outdir = os.path.abspath(a.outdir)
    try:
        with open(os.path.join(outdir, "sigdb.stamp")) as f:
            if f.read() == stamp:
                print("gen-sigdb: %s is current" % outdir)
                return 0
    except OSError:
        pass

    tmp = outdir + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    rng = random.Random(a.seed)
    write_hashes(os.path.join(tmp, "synth.hdb"), rng, a.md5, 16, 0)
    write_hashes(os.path.join(tmp, "synth.hsb"), rng, a.sha256, 32, a.md5)
    with open(os.path.join(tmp, "synth.ndb"), "w", encoding="ascii") as f:
        serial0 = a.md5 + a.sha256
        f.write("".join(body_signature(rng, serial0 + i) for i in range(a.ndb)))
    if a.testsigs:
        for name in sorted(os.listdir(a.testsigs)):
            if name.rsplit(".", 1)[-1] in ("hdb", "hsb", "ndb", "ldb", "mdb", "msb", "ign2", "fp"):
                shutil.copyfile(os.path.join(a.testsigs, name), os.path.join(tmp, name))
    with open(os.path.join(tmp, "sigdb.stamp"), "w") as f:
        f.write(stamp)
    shutil.rmtree(outdir, ignore_errors=True)
    os.rename(tmp, outdir)
    total = a.md5 + a.sha256 + a.ndb
    print("gen-sigdb: %s: %d signatures (%d MD5, %d SHA256, %d body)%s" % (
        outdir, total, a.md5, a.sha256, a.ndb, " + test signatures" if a.testsigs else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
