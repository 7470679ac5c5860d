#!/usr/bin/python3
"""daemon-bench.py - the real mqscand under load: memory, speed and reload.

usage: daemon-bench.py fill TEMPLATE QUEUE COUNT
       daemon-bench.py once MQSCAND CONF LABEL
       daemon-bench.py reload MQSCAND CONF TEMPLATE [--warmup S] [--after S]
                       [--backlog N]

TEMPLATE is a sendmail queue directory (qf/df pairs written by a real
sendmail). Entries are cloned from it into the incoming queue the way
sendmail writes them (df, then tfID renamed to qfID, mode 0600), each with
a new ID and an "X-Bench-Seq" header so that no two messages are the same
(libclamav's clean-file cache would otherwise make repeats free; their
attachments stay the same, as on a real gateway).

fill: clones COUNT entries into QUEUE, cycling over TEMPLATE.

once: runs "mqscand -c CONF --once -f" on what is queued, samples its
resident memory (PSS of mqscand's supervisor and scanning process
together, printed as VmRSS) every 20 ms
and prints LABEL, the messages per second mqscand itself
reports (engine already loaded), the CPU time it used per message (from
its "started" line on, so without the engine load) and the peak and final
resident memory.

reload: runs "mqscand -c CONF -f" and keeps its incoming queue topped up
to --backlog messages (the daemon is never short of work); after --warmup
seconds of scanning it sends SIGHUP, and --after seconds after the new
engine has been swapped in it stops feeding, waits for the queue to empty
and sends SIGTERM. Every line mqscand logs is time-stamped as it arrives,
and VmRSS is sampled every 20 ms. Printed:

  - how long the reload took (SIGHUP to "reloaded"), and messages per
    second before, during (old engine, new one compiling) and after it;
  - VmRSS: steady before, peak during the reload (both engines), steady
    after;
  - the longest time in which no message was being scanned at all, around
    the reload and in the steady phase before it (each message is busy
    from "time=" seconds before its log line up to that line);
  - messages in and out: every message fed must have a final verdict, and
    every delivered one a qf in the outgoing queue; "lost" counts those
    that have neither.

Exit status: 0; 1 if a message was lost, the reload failed or mqscand died.
"""
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time

VERDICT_RE = re.compile(r"^mqscand: \w+: (\w+): from=<[^>]*> size=\d+ nrcpt=\d+ "
                        r"verdict=(\w+)(.*) time=([\d.]+)s$")
PROCESSED_RE = re.compile(r"processed (\d+) messages \(([^)]*)\), (\d+ deferred).* in ([\d.]+) s"
                          r" \(([\d.]+) msg/s\)")
FINAL = {"clean", "passed", "cleaned", "quarantined", "deleted", "held"}


def template_entries(template):
    ids = sorted(n[2:] for n in os.listdir(template) if n.startswith("qf"))
    if not ids:
        sys.exit("daemon-bench: no qf files in %s" % template)
    out = []
    for i in ids:
        with open(os.path.join(template, "qf" + i), "rb") as f:
            qf = f.read()
        with open(os.path.join(template, "df" + i), "rb") as f:
            df = f.read()
        end = qf.rfind(b"\n.\n")
        if end < 0:
            sys.exit("daemon-bench: %s/qf%s has no end line" % (template, i))
        out.append((qf[:end + 1], qf[end + 1:], df))
    return out


class Feeder:
    """Clones template entries into a queue directory with new IDs."""

    def __init__(self, template, queue, prefix):
        self.entries = template_entries(template)
        self.queue = queue
        self.prefix = prefix
        self.n = 0
        self.fed = []           # (id, time)

    def _write(self, name, data):
        fd = os.open(os.path.join(self.queue, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def one(self):
        head, tail, df = self.entries[self.n % len(self.entries)]
        self.n += 1
        qid = "%s%07d" % (self.prefix, self.n)
        self._write("df" + qid, df)
        self._write("tf" + qid, head + b"H??X-Bench-Seq: %d\n" % self.n + tail)
        os.rename(os.path.join(self.queue, "tf" + qid), os.path.join(self.queue, "qf" + qid))
        self.fed.append((qid, time.monotonic()))


def queued(queue):
    return sum(1 for n in os.listdir(queue) if n.startswith("qf"))


def conf_value(conf, key):
    with open(conf) as f:
        for line in f:
            m = re.match(r'\s*%s\s*=\s*"?([^"\n]*)"?' % key, line)
            if m:
                return m.group(1)
    sys.exit("daemon-bench: no %s in %s" % (key, conf))


class Daemon:
    """mqscand in the foreground, its stderr time-stamped line by line and its
    VmRSS sampled."""

    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.lines = []         # (time, text)
        self.rss = []           # (time, MB)
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.sampler = threading.Thread(target=self._sample, daemon=True)
        self.reader.start()
        self.sampler.start()

    def _read(self):
        for raw in self.proc.stderr:
            t = time.monotonic()
            with self.cond:
                self.lines.append((t, raw.decode(errors="replace").rstrip("\n")))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    @staticmethod
    def _vmrss_kb(pid):
        # Proportional set size: pages the supervisor and the scanning
        # process share (the engine, between the fork and the supervisor
        # dropping its copy) are counted once between the two.
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
        return 0

    def _sample(self):
        # mqscand is a supervisor (the pid started here) and the scanning
        # process it forks: the memory is the sum of both (PSS, which is
        # what "VmRSS" stands for in the output).
        pid = self.proc.pid
        children = "/proc/%d/task/%d/children" % (pid, pid)
        while self.proc.poll() is None:
            try:
                kb = self._vmrss_kb(pid)
                with open(children) as f:
                    for child in f.read().split():
                        try:
                            kb += self._vmrss_kb(int(child))
                        except OSError:
                            pass        # gone between the two reads
                self.rss.append((time.monotonic(), kb / 1024))
            except OSError:
                break
            time.sleep(0.02)

    def wait_line(self, pattern, timeout, start=0):
        """Index of the first line from start on matching pattern, or None."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            i = start
            while True:
                while i < len(self.lines):
                    if rx.search(self.lines[i][1]):
                        return i
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.reader.is_alive()):
                    return None
                self.cond.wait(min(left, 0.5))

    def stop(self, timeout=120):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(10)
        return self.proc.returncode


def cmd_fill(template, queue, count):
    f = Feeder(template, queue, "F")
    for _ in range(int(count)):
        f.one()
    print("queued %d messages in %s" % (f.n, queue))


def cmd_once(mqscand, conf, label):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    d = Daemon([mqscand, "-c", conf, "--once", "-f"])
    # What building the engine cost is not the messages' (clamd's load is
    # not counted either): CPU time from the "started" line on.
    load_cpu = 0.0
    if d.wait_line(r": started \(once\)", 600) is not None:
        try:
            with open("/proc/%d/stat" % d.proc.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            load_cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    rc = d.proc.wait()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime - load_cpu
    d.reader.join(10)
    d.sampler.join(10)
    text = "\n".join(l for _, l in d.lines)
    m = PROCESSED_RE.search(text)
    if rc != 0 or not m:
        print(text[-3000:])
        sys.exit("daemon-bench: mqscand --once exited %d" % rc)
    peak = max(mb for _, mb in d.rss) if d.rss else 0
    last = d.rss[-1][1] if d.rss else 0
    print("%s: %s messages in %s s: %s msg/s; CPU %.1f ms per message; VmRSS peak %.0f MB,"
          " at exit %.0f MB" % (label, m.group(1), m.group(4), m.group(5),
                                cpu * 1000 / max(1, int(m.group(1))), peak, last))
    print("mqscand verdicts: %s, %s" % (m.group(2), m.group(3)))


def busy_gaps(intervals, lo, hi):
    """Longest stretch of [lo, hi] covered by no interval: (length, start)."""
    best, at = 0.0, lo
    cursor = lo
    for a, b in sorted(intervals):
        if b < lo:
            continue
        if a > hi:
            break
        if a > cursor and a - cursor > best:
            best, at = a - cursor, cursor
        cursor = max(cursor, b)
    if hi > cursor and hi - cursor > best:
        best, at = hi - cursor, cursor
    return best, at


def rate(completions, lo, hi):
    n = sum(1 for t in completions if lo <= t < hi)
    return n / (hi - lo) if hi > lo else 0.0


def median_rss(rss, lo, hi):
    vals = [mb for t, mb in rss if lo <= t <= hi]
    return statistics.median(vals) if vals else float("nan")


def cmd_reload(mqscand, conf, template, warmup=10.0, after=10.0, backlog=200):
    incoming = conf_value(conf, "incoming_queue_dir")
    outgoing = conf_value(conf, "outgoing_queue_dir")
    feeder = Feeder(template, incoming, "R")
    t0 = time.monotonic()
    d = Daemon([mqscand, "-c", conf, "-f"])
    i = d.wait_line(r": started \(daemon\)", 600)
    if i is None:
        d.stop()
        sys.exit("daemon-bench: mqscand did not start:\n" + "\n".join(l for _, l in d.lines[-20:]))
    t_started = d.lines[i][0]
    print("mqscand started in %.1f s (engine loaded and compiled)" % (t_started - t0))

    feeding = threading.Event()
    feeding.set()

    def feed():
        while feeding.is_set():
            have = queued(incoming)
            for _ in range(max(0, backlog - have)):
                feeder.one()
            time.sleep(0.05)

    ft = threading.Thread(target=feed)
    ft.start()
    time.sleep(warmup)
    n_before_hup = len(d.lines)
    t_hup = time.monotonic()
    d.proc.send_signal(signal.SIGHUP)
    i = d.wait_line(r"reloaded |reload failed", 900, n_before_hup)
    reload_ok = i is not None and "reloaded " in d.lines[i][1]
    t_swap = d.lines[i][0] if i is not None else time.monotonic()
    time.sleep(after)
    feeding.clear()
    ft.join()
    t_fed = time.monotonic()
    deadline = t_fed + 120
    while queued(incoming) > 0 and time.monotonic() < deadline and d.proc.poll() is None:
        time.sleep(0.1)
    time.sleep(1)
    alive = d.proc.poll() is None
    rc = d.stop()

    # Messages and their busy intervals, from the time-stamped log.
    done, busy, completions, deferred = {}, [], [], 0
    for t, line in d.lines:
        m = VERDICT_RE.match(line)
        if not m:
            continue
        qid, verdict, detail, secs = m.group(1), m.group(2), m.group(3), float(m.group(4))
        busy.append((t - secs, t))
        completions.append(t)
        if verdict in FINAL:
            done[qid] = (verdict, detail)
        else:
            deferred += 1
    out_ids = {n[2:] for n in os.listdir(outgoing) if n.startswith("qf")}
    fed_ids = [q for q, _ in feeder.fed]
    lost = [q for q in fed_ids if q not in done]
    missing_out = [q for q, (v, det) in done.items()
                   if v in ("clean", "passed", "cleaned") and " out=" in det
                   and re.search(r" out=(\w+)", det).group(1) not in out_ids]
    by_verdict = {}
    for v, _ in done.values():
        by_verdict[v] = by_verdict.get(v, 0) + 1
    left = queued(incoming)

    first = completions[0] if completions else t_started
    stall_reload, stall_at = busy_gaps(busy, t_hup - 1.0, t_swap + 3.0)
    stall_steady, _ = busy_gaps(busy, max(first, t_hup - warmup + 2.0), t_hup - 1.0)
    print("reload: %s in %.1f s (SIGHUP to swap)%s"
          % ("new engine swapped in" if reload_ok else "FAILED", t_swap - t_hup,
             "" if reload_ok else ": " + (d.lines[i][1] if i is not None else "no answer")))
    print("scanning: %.0f msg/s before the reload, %.0f msg/s while the new engine was built"
          " (old engine), %.0f msg/s after the swap"
          % (rate(completions, max(first, t_hup - warmup + 2.0), t_hup),
             rate(completions, t_hup, t_swap), rate(completions, t_swap, t_fed)))
    rss_before = median_rss(d.rss, t_hup - warmup / 2, t_hup)
    rss_peak = max((mb for t, mb in d.rss if t_hup <= t <= t_swap + after), default=float("nan"))
    rss_after = median_rss(d.rss, t_swap + after / 2, t_fed)
    print("VmRSS: %.0f MB steady before, %.0f MB peak during the reload (both engines),"
          " %.0f MB steady after" % (rss_before, rss_peak, rss_after))
    print("longest stall (no message being scanned): %.3f s around the reload"
          " (%.1f s after SIGHUP, %+.1f s from the swap); %.3f s in the steady phase before"
          % (stall_reload, stall_at - t_hup, stall_at - t_swap, stall_steady))
    print("messages: %d in; %d with a final verdict (%s), %d deferred and retried; %d in the"
          " outgoing queue; %d left in the incoming queue; %d delivered without an outgoing"
          " qf; lost %d"
          % (len(fed_ids), len(done), ", ".join("%d %s" % (n, v)
                                                 for v, n in sorted(by_verdict.items())),
             deferred, len(out_ids), left, len(missing_out), len(lost)))
    if not alive or rc != 0:
        print("mqscand exited %s%s" % (rc, "" if alive else " before SIGTERM"))
    return 0 if reload_ok and not lost and not missing_out and alive and rc == 0 else 1


def main():
    a = sys.argv[1:]
    if a[:1] == ["fill"] and len(a) == 4:
        return cmd_fill(*a[1:]) or 0
    if a[:1] == ["once"] and len(a) == 4:
        return cmd_once(*a[1:]) or 0
    if a[:1] == ["reload"] and len(a) >= 4:
        opts = {"--warmup": 10.0, "--after": 10.0, "--backlog": 200}
        rest = a[4:]
        while rest:
            if rest[0] not in opts or len(rest) < 2:
                sys.exit(__doc__)
            opts[rest[0]] = type(opts[rest[0]])(rest[1])
            rest = rest[2:]
        return cmd_reload(a[1], a[2], a[3], opts["--warmup"], opts["--after"],
                          opts["--backlog"])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
