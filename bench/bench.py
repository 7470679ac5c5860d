#!/usr/bin/python3
"""bench.py - how fast mqscand drains a full incoming queue, run by "make bench".

Every case runs "mqscand --once" over an incoming queue that a real sendmail
(queue-only, the incoming .cf the tests build, on 127.0.0.1:26200) filled
beforehand, so that mqscand, not SMTP, is measured; and "scan-floor" over
the same messages: GMime parse and libclamav scan with the same engine,
signatures, limits and number of threads, no queue I/O, nothing else.

  (a) the whole of SHARED_DIR/corpus (ham, spam, mime);
  (b) 10,000 messages made by gen-messages.py (fixed seed);
      the same with workers = 1;
      the queue-length cases: the first 1,000, 10,000 and 50,000 of the
      generated set waiting when mqscand starts.

For each: messages/s, MB/s, CPU seconds per 1,000 messages, peak resident
memory, the share of the messages' time in each stage (from mqscand's own
summary), and mqscand's throughput as a fraction of the floor's.

Every run is checked: the incoming queue must end empty, every message must
be in the outgoing queue (stamped by mqscand), in quarantine or in the hold
area, each generated infected message must have been cleaned or
quarantined, and the scanner must find nothing in what went out (in the
cleaned copies of the known infected messages of the generated set; in
every message of the corpus). Any failure ends the benchmark with status 1.

Filled queues are kept in BENCH_DIR and used again while the generator, its
seed and the corpus are unchanged; run directories of the runs that passed
are removed at the end (BENCH_KEEP=1 keeps them).

Environment (all optional):
  BENCH_DIR        work directory (default: ./tmp-bench)
  BENCH_SEED       seed of the generated set (default 1)
  BENCH_SET        size of the generated set (default 10000)
  BENCH_SIZES      queue lengths to compare (default "1000 10000 50000")
  BENCH_WORKERS    workers for every case but the workers = 1 one (default 2)
  BENCH_REPEAT     run every case this many times, floor and mqscand in
                   turn, and keep the fastest run of each (default 1): on a
                   machine that other work loads, the run it disturbed least
  BENCH_SCAN_TMP   libclamav's temporary directory (default: a directory on
                   /dev/shm, as mqscan.conf recommends tmpfs; else BENCH_DIR)
  BENCH_KEEP       keep the run directories
  BENCH_CASES      the cases to run, of "corpus gen workers sizes" (default:
                   all); "gen" alone is the quick check of the main figure
Required (set by bench/Makefile): MQSCAND, SCAN_FLOOR, SRCDIR, CONFDIR,
SHARED_DIR.
"""
import hashlib
import os
import re
import resource
import shutil
import smtplib
import subprocess
import sys
import tempfile
import threading
import time

PORT = 26200
INJECT_CONNECTIONS = 8


def env(name, default=None):
    v = os.environ.get(name, default)
    if v is None:
        sys.exit("bench: %s is not set (run it with \"make bench\")" % name)
    return v


MQSCAND = env("MQSCAND")
SCAN_FLOOR = env("SCAN_FLOOR")
SRCDIR = env("SRCDIR")
CONFDIR = env("CONFDIR")
SHARED = os.path.realpath(env("SHARED_DIR"))
SIGS = os.path.join(SHARED, "testsigs")
WORK = os.path.realpath(env("BENCH_DIR", "tmp-bench"))
SEED = int(env("BENCH_SEED", "1"))
SIZES = [int(x) for x in env("BENCH_SIZES", "1000 10000 50000").split()]
WORKERS = int(env("BENCH_WORKERS", "2"))
GEN_SET = int(env("BENCH_SET", "10000"))
REPEAT = max(1, int(env("BENCH_REPEAT", "1")))
KEEP = bool(os.environ.get("BENCH_KEEP"))
CASES = set(env("BENCH_CASES", "corpus gen workers sizes").split())
GEN = os.path.join(SRCDIR, "bench", "gen-messages.py")
LIB = os.path.join(SRCDIR, "tests", "lib.sh")


class BenchFailure(Exception):
    pass


RUN_DIRS = []       # passed runs, removed at the end


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


# --- the incoming sendmail -------------------------------------------------

def sh(script, **kw):
    """Runs script after the tests' lib.sh (smpair.sh, t_write_config)."""
    e = dict(os.environ, MQ_SRCDIR=os.path.join(SRCDIR, "tests"), MQ_SHARED_DIR=SHARED,
             MQ_TESTSIGS=SIGS)
    return subprocess.run(["bash", "-c", ". '%s'; %s" % (LIB, script)], env=e, **kw)


def port_free(port):
    import socket
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def smtp_data(raw):
    data = re.sub(rb"\r\n|\r|\n", b"\r\n", raw)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def fill(name, paths, dest):
    """Queues every file of paths through a real sendmail into dest (a new
    directory). Returns the number queued."""
    smdir = os.path.join(WORK, "sendmail-" + name)
    shutil.rmtree(smdir, ignore_errors=True)
    if not port_free(PORT):
        raise BenchFailure("127.0.0.1:%d is in use" % PORT)
    r = sh("smpair_setup '%s' %d && smpair_run_sendmail -C '%s/in.cf' -bd && "
           "smpair_wait_port %d" % (smdir, PORT, smdir, PORT))
    pidfile = os.path.join(smdir, "in.pid")
    try:
        if r.returncode != 0:
            raise BenchFailure("cannot start the incoming sendmail")
        refused = []
        errors = []

        def inject(k):
            try:
                smtp = smtplib.SMTP("127.0.0.1", PORT)
                for i in range(k, len(paths), INJECT_CONNECTIONS):
                    with open(paths[i], "rb") as f:
                        data = smtp_data(f.read())
                    try:
                        smtp.sendmail("bench-%d@example.com" % (i + 1),
                                      ["rcpt-%d@example.net" % (i + 1)], data,
                                      mail_options=["BODY=8BITMIME"])
                    except smtplib.SMTPResponseException as e:
                        refused.append((paths[i], e.smtp_code))
                        smtp.rset()
                smtp.quit()
            except Exception as e:      # reported below, never lost
                errors.append(repr(e))

        start = time.time()
        threads = [threading.Thread(target=inject, args=(k,))
                   for k in range(INJECT_CONNECTIONS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise BenchFailure("injection failed: %s" % errors[0])
        for path, code in refused:
            log("%s refused by sendmail (%d); not in the set" % (path, code))
        log("%s: %d messages queued by sendmail in %.0f s" % (
            name, len(paths) - len(refused), time.time() - start))
    finally:
        stop_sendmail(pidfile)
    queue = os.path.join(smdir, "mqueue.in")
    n = sum(1 for f in os.listdir(queue) if f.startswith("qf"))
    if n != len(paths) - len(refused):
        raise BenchFailure("%s: sendmail queued %d of %d" % (name, n, len(paths) - len(refused)))
    os.rename(queue, dest)
    shutil.rmtree(smdir, ignore_errors=True)
    return n


def stop_sendmail(pidfile):
    try:
        with open(pidfile) as f:
            pid = int(f.readline())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, 15)
    except ProcessLookupError:
        return
    for _ in range(100):
        if port_free(PORT):
            break
        time.sleep(0.1)


# --- message sets ----------------------------------------------------------

def digest(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
    return h.hexdigest()[:16]


def cached_queue(name, key, make, count=0):
    """A filled queue in WORK/queue-NAME, made again when key changed or
    when it holds fewer than count messages."""
    qdir = os.path.join(WORK, "queue-" + name)
    stamp = qdir + ".stamp"
    try:
        with open(stamp) as f:
            old_key, old_count = f.read().split()
        if old_key == key and int(old_count) >= count and os.path.isdir(qdir):
            return qdir
    except (OSError, ValueError):
        pass
    shutil.rmtree(qdir, ignore_errors=True)
    if os.path.exists(stamp):
        os.unlink(stamp)
    make(qdir)
    with open(stamp, "w") as f:
        f.write("%s %d\n" % (key, count))
    return qdir


def corpus_queue():
    paths = []
    for sub in ("ham", "spam", "mime"):
        d = os.path.join(SHARED, "corpus", sub)
        paths += sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".eml"))
    h = hashlib.sha256()
    for p in paths:
        h.update(p.encode())
        h.update(str(os.path.getsize(p)).encode())
    return cached_queue("corpus", h.hexdigest()[:16], lambda q: fill("corpus", paths, q))


def generated_queue(count):
    """At least count generated messages, queued by sendmail (message N is
    the same in every set of the seed, so a larger set serves too)."""
    with open(GEN, "rb") as f:
        key = digest(f.read(), SEED)

    def make(qdir):
        gdir = os.path.join(WORK, "gen")
        shutil.rmtree(gdir, ignore_errors=True)
        log("generating %d messages (seed %d)" % (count, SEED))
        subprocess.run(["/usr/bin/python3", GEN, "--seed", str(SEED), "--count", str(count),
                        gdir], check=True)
        paths = [os.path.join(gdir, "%06d.eml" % n) for n in range(1, count + 1)]
        fill("generated", paths, qdir)
        shutil.move(os.path.join(gdir, "manifest.tsv"), qdir + ".manifest")
        shutil.rmtree(gdir)
    return cached_queue("gen-%d" % SEED, key, make, count)


def queue_ids(qdir):
    return sorted(f[2:] for f in os.listdir(qdir) if f.startswith("qf"))


QF_HEADER = re.compile(rb"^H\?[^?]*\?([A-Za-z0-9-]+):[ \t]*(.*)$", re.M)


def qf_header(qf, name):
    for m in QF_HEADER.finditer(qf):
        if m.group(1).lower() == name.lower().encode():
            return m.group(2).strip()
    return None


def read(path):
    with open(path, "rb") as f:
        return f.read()


# --- one run -----------------------------------------------------------------

def write_config(rdir, workers, scan_tmp):
    """The tests' configuration (tests/lib.sh) with the bench's changes."""
    conf = os.path.join(rdir, "mqscan.conf")
    sh("t_write_config '%s' '%s'" % (conf, rdir), check=True)
    with open(conf, "a") as f:
        f.write("""scan_tmp_dir = "{t}"
# 127.0.0.1, where the mail came from, is outside: inbound, every check.
internal_networks = {{ "192.0.2.0/24" }}
# Spam is scored but never stopped before the virus scan, so that mqscand
# scans every message the floor scans.
spam_gateway_threshold = 10
workers = {w}
""".format(t=scan_tmp, w=workers))
    return conf


def copy_queue(src, ids, dst):
    os.makedirs(dst, mode=0o700)
    total = 0
    for i in ids:
        for kind in ("df", "qf"):
            data = read(os.path.join(src, kind + i))
            fd = os.open(os.path.join(dst, kind + i), os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                         0o600)
            os.write(fd, data)
            os.close(fd)
            total += len(data)
    # Written back before the clock starts: the run's fsyncs must not pay
    # for the copy.
    subprocess.run(["sync", "-f", dst], check=True)
    return total


SUMMARY = re.compile(r"processed (\d+) messages \((\d+) clean, (\d+) passed, (\d+) cleaned, "
                     r"(\d+) quarantined, (\d+) deleted, (\d+) held\), (\d+) deferred, "
                     r"([\d.]+) MB in ([\d.]+) s")
STAGES = re.compile(r"stages \(total ([\d.]+) s, (\d+) workers\): (.*); after batches ([\d.]+) s")
STAGE = re.compile(r"([A-Za-z ]+?) ([\d.]+) s ([\d.]+)%")


def run_mqscand(conf, rdir):
    logpath = os.path.join(rdir, "mqscand.log")
    with open(logpath, "wb") as logf:
        start = time.monotonic()
        p = subprocess.Popen([MQSCAND, "-c", conf, "--once", "-f"], stdout=logf, stderr=logf)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.monotonic() - start
    text = read(logpath).decode(errors="replace")
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        raise BenchFailure("mqscand --once exited %d (see %s)" % (rc, logpath))
    m = SUMMARY.search(text)
    s = STAGES.search(text)
    if m is None or s is None:
        raise BenchFailure("no summary in %s" % logpath)
    g = [int(x) for x in m.groups()[:8]]
    stages = [(n.strip(), float(sec), float(pct)) for n, sec, pct in STAGE.findall(s.group(3))]
    return {
        "processed": g[0], "clean": g[1], "passed": g[2], "cleaned": g[3],
        "quarantined": g[4], "deleted": g[5], "held": g[6], "deferred": g[7],
        "seconds": float(m.group(10)), "wall": wall,
        "cpu": ru.ru_utime + ru.ru_stime, "maxrss": ru.ru_maxrss * 1024,
        "busy": float(s.group(1)), "stages": stages, "after_batches": float(s.group(4)),
    }


def run_floor(conf, qdir, workers):
    out = subprocess.run([SCAN_FLOOR, "-c", conf, "-j", str(workers), qdir],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    m = re.search(r"^floor: (.*)$", out.stdout, re.M)
    if out.returncode != 0 or m is None:
        raise BenchFailure("scan-floor failed: %s" % (out.stderr.strip()[-500:]))
    return {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


def verify(rdir, conf, ids, msgids, infected):
    """Every message in is accounted for; nothing infected went out."""
    inq, outq = os.path.join(rdir, "mqueue.in"), os.path.join(rdir, "mqueue.out")
    left = [f for f in os.listdir(inq) if f[:2] in ("qf", "df")]
    if left:
        raise BenchFailure("%d files left in the incoming queue" % len(left))
    outs = set(queue_ids(outq))
    stray = [f for f in os.listdir(outq) if f[:2] not in ("qf", "df")
             or (f[:2] == "df" and f[2:] not in outs)]
    if stray:
        raise BenchFailure("outgoing queue holds unfinished files: %s" % stray[:5])
    quarantined = set()
    qroot = os.path.join(rdir, "quarantine")
    for day in os.listdir(qroot):
        if re.fullmatch(r"\d{8}", day):
            for entry in os.listdir(os.path.join(qroot, day)):
                parts = entry.split("-")
                if len(parts) == 3:
                    quarantined.add(parts[1])
    hold = os.path.join(rdir, "hold")
    held = set(f[2:] for f in os.listdir(hold) if f.startswith("qf"))
    lost, unscanned, infected_out = [], [], []
    for i in ids:
        if i in outs:
            stamp = qf_header(read(os.path.join(outq, "qf" + i)), "X-mqscan")
            if stamp is None or not re.match(rb"(clean|cleaned|passed by policy)\b.*mqscan", stamp):
                unscanned.append(i)
            elif msgids.get(i) in infected and not stamp.startswith(b"cleaned"):
                infected_out.append(i)
        elif i not in quarantined and i not in held:
            lost.append(i)
    for i in outs - set(ids):
        if not re.search(rb"^S<>$", read(os.path.join(outq, "qf" + i)), re.M):
            raise BenchFailure("outgoing %s is neither a scanned message nor a notice" % i)
    if lost:
        raise BenchFailure("%d messages lost: %s" % (len(lost), lost[:5]))
    if unscanned:
        raise BenchFailure("%d messages delivered without mqscan's stamp: %s"
                           % (len(unscanned), unscanned[:5]))
    if infected_out:
        raise BenchFailure("%d infected messages delivered uncleaned: %s"
                           % (len(infected_out), infected_out[:5]))
    # The scanner looks again at what went out: everything for a set whose
    # infected messages are not known (the corpus), else the copies of the
    # known infected ones (the others carry no signature, and the stamps
    # say they were scanned).
    known = [i for i in ids if msgids.get(i) in infected and i in outs]
    n_inf = sum(1 for i in ids if msgids.get(i) in infected)
    out = subprocess.run([SCAN_FLOOR, "-c", conf, "--verify", outq] + (known if msgids else []),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if out.returncode != 0:
        raise BenchFailure("the scanner finds something in the outgoing queue:\n" + out.stdout)
    return n_inf


def run_once(name, qdir, ids, workers, scan_tmp, msgids, infected, floor):
    """The floor, then mqscand, over a fresh copy of the messages ids of qdir;
    every message checked."""
    rdir = os.path.join(WORK, "run-" + name)
    shutil.rmtree(rdir, ignore_errors=True)
    os.makedirs(rdir, mode=0o700)
    for sub in ("mqueue.out", "quarantine", "hold", "state"):
        os.makedirs(os.path.join(rdir, sub), mode=0o700)
    conf = write_config(rdir, workers, scan_tmp)
    nbytes = copy_queue(qdir, ids, os.path.join(rdir, "mqueue.in"))
    res = {"name": name, "n": len(ids), "bytes": nbytes, "workers": workers}
    if floor:
        log("%s: floor, %d messages, %d workers" % (name, len(ids), workers))
        res["floor"] = run_floor(conf, os.path.join(rdir, "mqueue.in"), workers)
    log("%s: mqscand --once, %d messages, %d workers" % (name, len(ids), workers))
    res.update(run_mqscand(conf, rdir))
    if res["processed"] != len(ids) or res["deferred"] != 0:
        raise BenchFailure("%s: mqscand processed %d of %d messages, %d deferred"
                           % (name, res["processed"], len(ids), res["deferred"]))
    res["infected_known"] = verify(rdir, conf, ids, msgids, infected)
    if rdir not in RUN_DIRS:
        RUN_DIRS.append(rdir)
    return res


def run_case(name, qdir, n, workers, scan_tmp, msgids, infected, floor=True):
    """Runs the floor and mqscand over the first n messages of qdir, REPEAT
    times; keeps mqscand's fastest run and the floor's fastest."""
    ids = queue_ids(qdir)[:n]
    best = None
    for _ in range(REPEAT):
        res = run_once(name, qdir, ids, workers, scan_tmp, msgids, infected, floor)
        if best is None:
            best = res
            continue
        if floor and res["floor"]["seconds"] < best["floor"]["seconds"]:
            best["floor"] = res["floor"]
        if res["seconds"] < best["seconds"]:
            res["floor"] = best.get("floor")
            best = res
    return best


# --- report ----------------------------------------------------------------

def rate(res):
    return res["n"] / res["seconds"] if res["seconds"] > 0 else 0.0


def floor_rate(res):
    return res["n"] / res["floor"]["seconds"]


def print_case(title, res):
    print("\n== %s: %d messages, %.1f MB, workers = %d ==" % (
        title, res["n"], res["bytes"] / 1e6, res["workers"]))
    print("  %-8s %9s %8s %16s %14s %9s" % ("", "msg/s", "MB/s", "CPU s/1000 msgs",
                                            "peak RSS MB", "wall s"))
    print("  %-8s %9.1f %8.2f %16.2f %14.1f %9.2f" % (
        "mqscand", rate(res), res["bytes"] / 1e6 / res["seconds"], res["cpu"] / res["n"] * 1000,
        res["maxrss"] / 1e6, res["seconds"]))
    if "floor" in res:
        fl = res["floor"]
        print("  %-8s %9.1f %8.2f %16.2f %14s %9.2f" % (
            "floor", floor_rate(res), res["bytes"] / 1e6 / fl["seconds"],
            (fl["user"] + fl["sys"]) / res["n"] * 1000, "-", fl["seconds"]))
        print("  mqscand = %.2f of the floor; its CPU per message is %.2f times the floor's"
              % (rate(res) / floor_rate(res), res["cpu"] / (fl["user"] + fl["sys"])))
    print("  stages (share of %.1f s for all messages; %.2f s finishing batches, main thread):"
          % (res["busy"], res["after_batches"]))
    print("    " + ", ".join("%s %.1f%%" % (n, pct) for n, _, pct in res["stages"]))
    print("  outcome: %d clean, %d passed, %d cleaned, %d quarantined, %d deleted, %d held"
          % tuple(res[k] for k in ("clean", "passed", "cleaned", "quarantined", "deleted",
                                   "held")) +
          ("; %d known infected, all cleaned or quarantined" % res["infected_known"]
           if res["infected_known"] else "") +
          "; checked: none lost, all stamped, %s clean for the scanner"
          % ("the cleaned copies" if res["infected_known"] else "every delivered message"))


def main():
    if os.geteuid() != 0:
        sys.exit("bench: needs root (sendmail runs in a private UTS namespace, as in the tests)")
    for prog in (MQSCAND, SCAN_FLOOR):
        if not os.access(prog, os.X_OK):
            sys.exit("bench: %s not built" % prog)
    os.makedirs(WORK, mode=0o700, exist_ok=True)
    scan_tmp = os.environ.get("BENCH_SCAN_TMP")
    own_tmp = None
    if not scan_tmp:
        base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else WORK
        scan_tmp = own_tmp = tempfile.mkdtemp(prefix="mqscan-bench-", dir=base)
    started = time.time()
    for old in os.listdir(WORK):
        if old.startswith("run-"):
            shutil.rmtree(os.path.join(WORK, old))
    try:
        results = bench(scan_tmp)
    except BenchFailure as e:
        print("\nFAIL: %s" % e, flush=True)
        return 1
    finally:
        if own_tmp:
            shutil.rmtree(own_tmp, ignore_errors=True)
    # Removed at the end, not between cases: on ext4 without a journal the
    # next run's new files would pay for skipping the recently freed inodes.
    if not KEEP:
        for rdir in RUN_DIRS:
            shutil.rmtree(rdir)
    print("\nbench: done in %.0f s" % (time.time() - started))
    return 0 if results else 1


def fs_type(path):
    """"ext4", "tmpfs"...; an ext3/ext4 without a journal says so (its fsync
    and file creation cost differ)."""
    out = subprocess.run(["findmnt", "-no", "SOURCE,FSTYPE", "-T", path],
                         stdout=subprocess.PIPE, text=True).stdout.split("\n")[0].split()
    if len(out) < 2:
        return "?"
    source, fstype = out[0], out[1]
    if fstype in ("ext3", "ext4") and os.path.isdir("/proc/fs/jbd2"):
        dev = os.path.basename(source)
        if not any(j.startswith(dev + "-") for j in os.listdir("/proc/fs/jbd2")):
            return fstype + " without a journal"
    return fstype


def bench(scan_tmp):
    biggest = max(SIZES + [GEN_SET])
    corpus = corpus_queue()
    gen = generated_queue(biggest)
    msgids, infected = {}, set()
    with open(gen + ".manifest") as f:
        for line in f:
            n, kind, _size, msgid, _att = line.rstrip("\n").split("\t")
            if kind == "infected":
                infected.add(msgid.encode())
    for i in queue_ids(gen):
        mid = qf_header(read(os.path.join(gen, "qf" + i)), "Message-ID")
        msgids[i] = mid

    print("mqscan bench: mqscand --once over incoming queues filled by sendmail (queue only)")
    print("machine: %d CPUs, load %.2f %.2f %.2f at start; queues on %s (%s), "
          "libclamav temporary files on %s (%s); fsync on" % (
              os.cpu_count(), *os.getloadavg(), WORK, fs_type(WORK), scan_tmp,
              fs_type(scan_tmp)))
    print("config: shipped defaults (batches of 30, queue_sync = filesystem, rules, spam "
          "checks inbound, notifications), spam never stopped before the scan; seed %d%s"
          % (SEED, "; best of %d runs" % REPEAT if REPEAT > 1 else ""))

    if "corpus" in CASES:
        res = run_case("corpus", corpus, 10 ** 9, WORKERS, scan_tmp, {}, set())
        print_case("(a) corpus (ham, spam, mime)", res)
    by_size = {}
    res_gen = res_one = None
    if "gen" in CASES or "workers" in CASES:
        res_gen = run_case("gen", gen, GEN_SET, WORKERS, scan_tmp, msgids, infected)
        print_case("(b) generated set", res_gen)
        by_size[GEN_SET] = res_gen
    if "workers" in CASES:
        res_one = run_case("gen-1", gen, GEN_SET, 1, scan_tmp, msgids, infected)
        print_case("(b) generated set, one worker", res_one)
        print("\n== workers (generated set) ==")
        print("  %-9s %14s %12s %10s" % ("workers", "mqscand msg/s", "floor msg/s", "of floor"))
        for r in (res_one, res_gen):
            print("  %-9d %14.1f %12.1f %10.2f" % (r["workers"], rate(r), floor_rate(r),
                                                   rate(r) / floor_rate(r)))
    if "sizes" in CASES:
        for n in SIZES:
            if n not in by_size:
                by_size[n] = run_case("gen-%d" % n, gen, n, WORKERS, scan_tmp, msgids,
                                      infected, floor=False)
        print("\n== queue length (generated set, workers = %d): cost per message must stay "
              "flat ==" % WORKERS)
        print("  %-9s %9s %16s %14s %16s" % ("waiting", "msg/s", "CPU s/1000 msgs",
                                             "peak RSS MB", "RSS/msg waiting"))
        sizes = sorted(by_size)
        for n in sizes:
            r = by_size[n]
            growth = ""
            if n != sizes[0]:
                growth = "%.0f bytes" % ((r["maxrss"] - by_size[sizes[0]]["maxrss"])
                                         / (n - sizes[0]))
            print("  %-9d %9.1f %16.2f %14.1f %16s" % (n, rate(r), r["cpu"] / r["n"] * 1000,
                                                       r["maxrss"] / 1e6, growth))
    if res_gen is not None:
        print("\nRESULT: generated set, workers = %d: %.1f msg/s = %.2f of the floor (%.1f msg/s)"
              % (WORKERS, rate(res_gen), rate(res_gen) / floor_rate(res_gen),
                 floor_rate(res_gen)))
    return True


if __name__ == "__main__":
    sys.exit(main())
