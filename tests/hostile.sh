#!/bin/bash
# hostile.sh - hostile input gets a safe outcome: delivered scanned,
# cleaned, quarantined or held; never passed unscanned, never a crash, never
# unbounded memory or time. No sendmail needed: hostile.py writes the queue
# files, mqscand --once processes them with the real libclamav and GMime.
#
#  1. content: malformed MIME, odd charsets, encoded words that decode to
#     CR/LF/NUL/"/"/"..", hostile file names and archive member names, CR/LF
#     in everything copied into a header, forged X-mqscan and X-Spam headers,
#     broken queue files. hostile.py checks every outcome, every delivered
#     header, the notifications, the quarantine metadata and the log; every
#     delivered message must scan clean; nothing may be created outside the
#     queue, quarantine and hold directories (a canary directory stays as it
#     was).
#  2. queue file names that are not queue IDs are never opened, moved or
#     removed (checked with strace when it is there); valid IDs whose files
#     are symbolic links out of the queue are held as links, never followed.
#  3. bombs, each alone: 5,000 nested multiparts, 50,000 nested messages,
#     100,000 parts, a million header lines in a message of a digest, a To
#     of 60,000 names (GMime reads it in quadratic time),
#     100,000 header lines with 3 MB headers, a 4,000 MiB zip
#     member, the same in zip64, a 42.zip (6.5 TiB), a zip of 100,000
#     members; and a message over max_message_size, which is held unread.
#     Each must be cleaned (policy "replace" for what cannot be scanned)
#     with the limit it hit in the log, within HOSTILE_MAX_SECONDS
#     (15) and HOSTILE_MAX_RSS_MB (160) of peak memory as /usr/bin/time
#     measures it: far below what the bombs expand to (GMime alone took
#     250 MB for the 100,000 parts, libclamav 4 minutes for the zip).
# Every run: exit status 0, no panic or sanitizer report in the log,
# nothing left in the incoming queue or in libclamav's scratch directory,
# nothing outside the spool directories.
set -u
. "${MQ_SRCDIR:?}/lib.sh"
[ -d "${MQ_TESTSIGS:-}" ] || t_skip "no test signatures"
[ -x "${MQ_SCANFILE:-}" ] || t_skip "no mq-scanfile (make check builds it)"
[ -x /usr/bin/time ] || t_skip "no /usr/bin/time (apt-get install time)"
PY=$SMPAIR_PYTHON
HOSTILE=$MQ_SRCDIR/hostile.py
MAX_RSS_MB=${HOSTILE_MAX_RSS_MB:-160}
MAX_SECONDS=${HOSTILE_MAX_SECONDS:-15}
T=$(t_tmpdir hostile)
mkdir -p "$T/canary"
echo "canary, never to be touched" > "$T/canary/file"
canary_state() { (cd "$T/canary" && ls -lA --time-style=full-iso && md5sum file); }
canary_state > "$T/canary.before"

setup() {   # setup NAME: a fresh spool T/NAME and its configuration
    D=$T/$1
    mkdir -p "$D/mqueue.in" "$D/mqueue.out" "$D/scan"
    t_write_config "$D/mqscan.conf" "$D"
    # Every message from outside is tagged (SCL >= 1), none stopped as spam
    # (the virus checks are what is tested); notices go to internal senders.
    cat >> "$D/mqscan.conf" <<CONF
spam_store_threshold = 1
spam_gateway_threshold = 10
CONF
}
run() {     # run: mqscand --once on D; sets rc, secs and rss (MB)
    /usr/bin/time -f "%e %M" -o "$D/time" "$MQSCAND" -c "$D/mqscan.conf" --once -f \
        2> "$D/mqscand.log"
    rc=$?
    read -r secs rss < <(tail -n 1 "$D/time")
    rss=$((rss / 1024))
}
check() {   # check: hostile.py's checks, and every delivered message scans clean
    "$PY" "$HOSTILE" check "$D/cases.json" "$D/mqscand.log" "$D/mqueue.out" "$D/quarantine" \
        "$D/hold" "$D/scan" || t_fail "$1: see above"
    if [ -n "$(ls "$D/scan")" ]; then
        "$MQ_SCANFILE" "$MQ_TESTSIGS" "$D"/scan/*.eml > "$D/scan.out" 2>&1 ||
            { grep -v ': CLEAN$' "$D/scan.out" | head; t_fail "$1: delivered infected"; }
    fi
    [ -z "$(ls "$D/mqueue.in" | grep -E '^[qd]f')" ] || t_fail "$1: entries left in mqueue.in"
    # Everything mqscand made is in its own directories; libclamav's
    # scratch files are gone.
    stray=$(cd "$D" && find . -mindepth 1 |
            grep -vE '^\./(mqueue\.(in|out)|quarantine|hold|state|scantmp|scan)(/|$)' |
            grep -vxE '\./(mqscan\.conf|cases\.json|mqscand\.(log|pid)|time|(scan|make)\.out)')
    [ -z "$stray" ] || t_fail "$1: files outside the spool: $(echo $stray | cut -c1-200)"
    [ -z "$(find "$D/scantmp" -mindepth 1)" ] || t_fail "$1: libclamav left files in scan_tmp_dir"
    if grep -qE 'panic|Sanitizer|runtime error' "$D/mqscand.log"; then
        t_fail "$1: $(grep -m1 -E 'panic|Sanitizer|runtime error' "$D/mqscand.log")"
    fi
    return 0
}

# 1. content
setup content
"$PY" "$HOSTILE" make "$D/mqueue.in" "$D/cases.json" content || t_fail "cannot build the messages"
run
[ "$rc" = 0 ] || { tail -5 "$D/mqscand.log"; t_fail "content: mqscand --once exited $rc"; }
check content
echo "ok 1 content: $(grep -c '"id"' "$D/cases.json") hostile messages, safe outcomes" \
     "(${secs} s, peak RSS ${rss} MB)"

# 2. queue file names
setup names
"$PY" "$HOSTILE" queue-names "$D/mqueue.in" "$T/canary/file" || t_fail "cannot write the names"
(cd "$D/mqueue.in" && find . -type f -name '[qd]f*' ! -name '*LINK*' -exec md5sum {} +) |
    sort > "$D/names.before"
TRACE=
command -v strace >/dev/null && TRACE="strace -f -qq -o $D/trace -e trace=%file"
# (LeakSanitizer, in a build with --enable-sanitizers, cannot run under ptrace.)
ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" $TRACE "$MQSCAND" -c "$D/mqscan.conf" --once -f \
    2> "$D/mqscand.log"
rc=$?
[ "$rc" = 0 ] || { tail -5 "$D/mqscand.log"; t_fail "names: mqscand --once exited $rc"; }
(cd "$D/mqueue.in" && find . -type f -name '[qd]f*' ! -name '*LINK*' -exec md5sum {} +) |
    sort > "$D/names.after"
cmp -s "$D/names.before" "$D/names.after" ||
    { diff "$D/names.before" "$D/names.after" | head; t_fail "names: a hostile name was touched"; }
[ "$(wc -l < "$D/names.after")" -ge 28 ] || t_fail "names: hostile files missing"
for id in LINK1 LINK2; do
    grep -q "$id: .*verdict=held.*symbolic link" "$D/mqscand.log" || t_fail "names: $id not held"
    [ -L "$D/hold/df$id" ] || t_fail "names: df$id not held as a link"
done
[ -L "$D/hold/qfLINK1" ] || t_fail "names: qfLINK1 not held as a link"
if [ -n "$TRACE" ]; then
    # Every path mqscand named in a file system call that looks like a queue
    # file ends in a queue ID.
    grep -oE '"[^"]*/[qdt]f[^"]*"' "$D/trace" | tr -d '"' | sed 's|.*/||' | sort -u > "$D/touched"
    bad=$(grep -vE '^[qdt]f[A-Za-z0-9]+$' "$D/touched")
    [ -z "$bad" ] || { echo "$bad" | head; t_fail "names: mqscand named a hostile queue file"; }
    how="strace: only queue IDs named"
else
    how="no strace"
fi
echo "ok 2 queue names: 15 hostile names left alone, 2 linked entries held as links ($how)"

# 3. bombs
n=3
for bomb in deep-multipart deep-rfc822 parts digest addresses headers zip-4g zip64-4g zip-42 \
            zip-files size; do
    setup "bomb-$bomb"
    [ "$bomb" = size ] && echo 'max_message_size = "1M"' >> "$D/mqscan.conf"
    "$PY" "$HOSTILE" make "$D/mqueue.in" "$D/cases.json" "bomb-$bomb" > "$D/make.out" ||
        t_fail "cannot build bomb $bomb"
    run
    [ "$rc" = 0 ] || { tail -5 "$D/mqscand.log"; t_fail "bomb $bomb: mqscand --once exited $rc"; }
    check "bomb $bomb"
    size=$(($(cat "$D"/quarantine/*/*/[qd]f "$D"/hold/[qd]f* 2>/dev/null | wc -c) / 1024))
    verdict=$(sed -n 's/.* verdict=\([a-z]*\).*/\1/p' "$D/mqscand.log")
    found=$(sed -n -e 's/.*findings: \(.*\) quarantine=.*/\1/p' \
                   -e 's/.*verdict=held \(.*\) time=.*/\1/p' "$D/mqscand.log" | cut -c1-160)
    [ "$rss" -le "$MAX_RSS_MB" ] || t_fail "bomb $bomb: peak RSS ${rss} MB > ${MAX_RSS_MB} MB"
    awk -v s="$secs" -v m="$MAX_SECONDS" 'BEGIN { exit !(s <= m) }' ||
        t_fail "bomb $bomb: ${secs} s > ${MAX_SECONDS} s"
    echo "ok $n bomb $bomb (${size} KB queued): $verdict in ${secs} s, peak RSS ${rss} MB;" \
         "$found"
    n=$((n + 1))
done

# Nothing was made from a name in a message, anywhere, and the canary is
# as it was.
canary_state > "$T/canary.after"
cmp -s "$T/canary.before" "$T/canary.after" || t_fail "the canary directory changed"
[ -z "$(find "$T" \( -name passwd -o -name shadow -o -name 'win.ini' -o -name pwned \
        -o -name '*Evil*' -o -name '*injected*' \) -print)" ] ||
    t_fail "a file was created from a name in a message"
echo PASS
