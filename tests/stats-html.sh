#!/bin/bash
# stats-html.sh - mqscan-stats end to end: a database filled by mq-stats-fill
# (fixed samples on 2023-11-14, see mq-stats-fill.c), the text report, the
# exit codes, and the HTML page as headless Chromium renders it.
#
#  1. text report: per-hour table, totals, top lists; the neighbouring days
#     are not in it
#  2. exit codes: 64 usage, 69 no or bad database, 78 bad configuration;
#     the database found through the configuration's state_dir
#  3. the HTML file on its own: self-contained (no script, no external
#     resource), attacker names escaped
#  4. Chromium's DOM: svg#chart-hourly with 24 + 24 bars, svg#chart-viruses
#     with 3, no <script> or <img> element made from a virus name or sender
#  5. Chromium's screenshot: a PNG of some size
#
# Without Chromium, 4 and 5 are skipped (exit 77) unless MQSCAN_REQUIRE_E2E
# is set. CHROMIUM may name another binary.
set -u
. "${MQ_SRCDIR:?}/lib.sh"
T=$(t_tmpdir stats-html)
DB=$T/stats.db
DAY=2023-11-14
FILL=$MQ_BUILDDIR/mq-stats-fill
STATS=${MQSCAN_STATS:?MQSCAN_STATS not set}

[ -x "$STATS" ] || t_fail "no $STATS"
"$FILL" "$DB" || t_fail "mq-stats-fill failed"

# 1. The text report.
"$STATS" --db "$DB" --day $DAY > "$T/day.txt" 2> "$T/day.err"
rc=$?
[ $rc = 0 ] || t_fail "text report: exit $rc: $(cat "$T/day.err")"
[ ! -s "$T/day.err" ] || t_fail "text report: stderr: $(cat "$T/day.err")"
head -1 "$T/day.txt" | grep -qx "mqscan statistics: $DAY (UTC)" || t_fail "text report: title"
[ "$(grep -c '^[0-2][0-9]:00 ' "$T/day.txt")" = 24 ] || t_fail "text report: not 24 hours"
# total: messages MB clean passed cleaned quarantined deleted held deferred infected banned
read -r -a total <<< "$(grep '^total ' "$T/day.txt")"
[ "${total[*]:1:11}" = "66 0.75 60 0 2 2 1 1 1 4 2" ] ||
    t_fail "text report: total line is '${total[*]}'"
grep -qx '         3  Win.Test.EICAR_HDB-1' "$T/day.txt" || t_fail "text report: top virus"
grep -qx '         1  <img src=x onerror=alert(2)>@evil.example' "$T/day.txt" ||
    t_fail "text report: blocked sender"
grep -q 'Outside\.\|early@\|late@' "$T/day.txt" && t_fail "text report: another day's data"
"$STATS" --db "$DB" --from 2023-11-13 --to 2023-11-15 > "$T/range.txt" ||
    t_fail "range report failed"
grep -q '^2023-11-13  *1 ' "$T/range.txt" && grep -q '^2023-11-15  *1 ' "$T/range.txt" &&
    grep -q '^total  *68 ' "$T/range.txt" || t_fail "range report: $(cat "$T/range.txt")"
echo "ok 1 text report: 24 hours, totals and top lists of $DAY only"

# 2. Exit codes, and state_dir from the configuration.
expect() {  # expect STATUS DESCRIPTION ARGS...
    local want=$1 what=$2
    shift 2
    "$STATS" "$@" > "$T/out" 2> "$T/err"
    local got=$?
    [ "$got" = "$want" ] || t_fail "$what: exit $got, expected $want ($(cat "$T/err"))"
}
expect 64 "unknown option" --bogus
expect 64 "stray argument" --db "$DB" extra
expect 64 "--day with --from" --db "$DB" --day $DAY --from $DAY
expect 64 "--to without --from" --db "$DB" --to $DAY
expect 64 "bad date" --db "$DB" --day 2023-02-30
expect 64 "bad date format" --db "$DB" --day 14.11.2023
expect 64 "reversed range" --db "$DB" --from 2023-11-15 --to 2023-11-14
expect 64 "range too long" --db "$DB" --from 2000-01-01 --to 2023-11-14
expect 69 "missing database" --db "$T/none.db" --day $DAY
printf 'not a database at all, only text that SQLite will refuse to read\n%.0s' 1 2 3 \
    > "$T/junk.db"
expect 69 "not a database" --db "$T/junk.db" --day $DAY
ln -s "$DB" "$T/link.db"
expect 69 "symbolic link" --db "$T/link.db" --day $DAY
expect 78 "missing configuration" -c "$T/none.conf" --day $DAY
echo 'no_such_option = 1' > "$T/bad.conf"
expect 78 "bad configuration" -c "$T/bad.conf" --day $DAY
mkdir -p "$T/state"
# Every other option has a default; only state_dir matters here.
printf 'state_dir = "%s"\n' "$T/state" > "$T/mqscan.conf"
cp "$DB" "$T/state/stats.db"
expect 0 "database from state_dir" -c "$T/mqscan.conf" --day $DAY
cmp -s "$T/out" "$T/day.txt" || t_fail "state_dir report differs from --db report"
[ -e "$T/state/stats.db-wal" ] && [ "$(stat -c %s "$T/state/stats.db-wal")" != 0 ] &&
    t_fail "the reader wrote to the database"
echo "ok 2 exit codes 64, 69, 78; state_dir from the configuration"

# 3. The HTML file as written.
HTML=$T/out.html
"$STATS" --db "$DB" --day $DAY --html "$HTML" > /dev/null || t_fail "--html failed"
[ -s "$HTML" ] || t_fail "no HTML file"
grep -qi '<script' "$HTML" && t_fail "HTML: a <script> tag"
grep -qi '<img\|<link\|<iframe\|<object\|<embed\|@import\|url(\| src="\| href=' "$HTML" &&
    t_fail "HTML: an external resource"
grep -q '&lt;script&gt;alert(1)&lt;/script&gt;' "$HTML" || t_fail "HTML: virus name not escaped"
grep -q '&lt;img src=x onerror=alert(2)&gt;@evil.example' "$HTML" ||
    t_fail "HTML: sender not escaped"
echo "ok 3 HTML: self-contained, names escaped"

# 4 and 5 need a browser.
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || t_skip "no $CHROMIUM (apt-get install chromium)"
PY=${SMPAIR_PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || t_skip "no $PY"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium() {
    timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic \
        --no-first-run --disable-background-networking --disable-component-update \
        --disable-sync --user-data-dir="$profile" "$@" 2>> "$T/chromium.log"
}

# 4. The DOM Chromium built from the page.
chromium --dump-dom "file://$HTML" > "$T/dom.html" || t_fail "chromium --dump-dom failed"
"$PY" - "$T/dom.html" <<'PY' || t_fail "DOM check failed"
import sys
from html.parser import HTMLParser

class Dom(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack = []         # ids of the open <svg> elements
        self.rects = {}         # svg id -> [class of each rect]
        self.bad = []           # elements or attributes that must not exist
        self.texts = {}         # svg id -> text

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "img", "iframe", "object", "embed", "link"):
            self.bad.append(tag)
        self.bad += [k for k in a if k.startswith("on")]
        if tag == "svg":
            self.stack.append(a.get("id", ""))
            self.rects.setdefault(self.stack[-1], [])
        elif tag == "rect" and self.stack:
            self.rects[self.stack[-1]].append(a.get("class", ""))

    def handle_endtag(self, tag):
        if tag == "svg" and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if self.stack:
            self.texts[self.stack[-1]] = self.texts.get(self.stack[-1], "") + data

d = Dom()
d.feed(open(sys.argv[1], encoding="utf-8").read())
ok = True
def check(cond, what):
    global ok
    if not cond:
        print("DOM:", what)
        ok = False
hourly = d.rects.get("chart-hourly")
check(hourly is not None, "no svg#chart-hourly")
check(hourly is not None and len(hourly) == 48, "chart-hourly: %s rects, expected 48" %
      (len(hourly) if hourly else 0))
check(hourly is not None and hourly.count("messages") == 24 and hourly.count("threats") == 24,
      "chart-hourly: not 24 messages and 24 threats bars")
viruses = d.rects.get("chart-viruses")
check(viruses is not None and len(viruses) == 3, "chart-viruses: %r" % viruses)
check("<script>alert(1)</script>" in d.texts.get("chart-viruses", ""),
      "chart-viruses: the virus name is not shown as text")
check(not d.bad, "forbidden elements or attributes: %r" % d.bad)
sys.exit(0 if ok else 1)
PY
echo "ok 4 DOM: 48 bars in svg#chart-hourly, 3 in svg#chart-viruses, no script or img element"

# 5. A screenshot.
chromium --screenshot="$T/out.png" --window-size=1200,900 "file://$HTML" > /dev/null ||
    t_fail "chromium --screenshot failed"
[ -f "$T/out.png" ] || t_fail "no screenshot"
[ "$(head -c 8 "$T/out.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
    t_fail "screenshot is not a PNG"
size=$(stat -c %s "$T/out.png")
[ "$size" -gt 20000 ] || t_fail "screenshot is only $size bytes"
echo "ok 5 screenshot: $T/out.png, $size bytes"

# --mail: the report queued for the postmaster, HTML attached.
M=$T/mail
mkdir -p "$M/out" "$M/state"
t_write_config "$M/mqscan.conf" "$M"
echo 'postmaster = "postmaster@example.org"' >> "$M/mqscan.conf"
sed -i "s|^outgoing_queue_dir = .*|outgoing_queue_dir = \"$M/out\"|" "$M/mqscan.conf"
cp "$DB" "$M/state/stats.db"
"$STATS" -c "$M/mqscan.conf" --day 2023-11-14 --mail > /dev/null || t_fail "--mail failed"
qf=$(ls "$M/out" | grep '^qf')
[ "$(echo "$qf" | wc -w)" = 1 ] || t_fail "--mail: expected one queued message, got: $qf"
grep -q '^RPF:<postmaster@example.org>$' "$M/out/$qf" || t_fail "--mail: not to the postmaster"
grep -q '^S<>$' "$M/out/$qf" || t_fail "--mail: the envelope sender is not empty"
"$SMPAIR_PYTHON" - "$M/out/$qf" "$M/out/df${qf#qf}" <<'PY' || t_fail "--mail: no HTML report with its chart attached"
import email, email.policy, re, sys
qf, df = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
head = b"".join(re.findall(rb"^H\?\?(.*\n(?:[ \t].*\n)*)", qf, re.M))
msg = email.message_from_bytes(head + b"\n" + df, policy=email.policy.default)
html = [p for p in msg.walk() if p.get_content_type() == "text/html"]
ok = len(html) == 1 and html[0].get_filename() == "mqscan-report.html"
content = html[0].get_content() if ok else ""
sys.exit(0 if ok and 'id="chart-hourly"' in content and "<script" not in content else 1)
PY
echo "ok 6 --mail: the report queued for the postmaster, HTML with its chart attached"
