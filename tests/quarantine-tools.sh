#!/bin/bash
# quarantine-tools.sh - mqscan-quarantine over a quarantine that mqscand made.
#
# policy.py writes queue files with infected and banned attachments (a
# sample of its cases, every direction), mqscand --once quarantines them,
# and then every command of mqscan-quarantine is run against the result:
#   - list: one line per entry directory, output equal to what
#     quarantine_tools.py reads from the meta files independently, the
#     filters (--sender, --reason, --since) and both orders;
#   - show: every meta field, the original's headers, the files and sizes;
#   - release: the outgoing qf/df are the entry's (df byte for byte, qf up
#     to what a new queue entry resets), the ID steps aside from the cleaned
#     copy still queued, meta records who/when/what; --to replaces the
#     recipients and nothing else; bad addresses are refused;
#   - invalid IDs are refused with 64 and nothing anywhere changes;
#   - delete removes exactly one entry; purge --older-than removes exactly
#     the backdated ones (day directory and meta time must both be old);
#   - symlinks: part-9 -> /etc/passwd is removed itself by delete and purge
#     (the link, never the target); an entry or day directory that is a
#     symlink, or an entry holding an unknown name, is left alone.
# No sendmail needed. MQ_QT_WRAPPER (for example "valgrind -q
# --error-exitcode=99") is put in front of every mqscan-quarantine run.
set -u
. "${MQ_SRCDIR:?}/lib.sh"
[ -x "${MQSCAN_QUARANTINE:-}" ] || t_fail "MQSCAN_QUARANTINE is not set to the built tool"
[ -d "${MQ_TESTSIGS:-}" ] || t_skip "no test signatures"
[ -d /usr/share/clamav-testfiles ] || t_skip "no /usr/share/clamav-testfiles"
T=$(t_tmpdir quarantine-tools)
PY=${SMPAIR_PYTHON:-python3}
QT="$PY $MQ_SRCDIR/quarantine_tools.py"
QD=$T/quarantine
OUT=$T/mqueue.out
TAB=$(printf '\t')

mkdir -p "$T/mqueue.in" "$OUT"
t_write_config "$T/mqscan.conf" "$T"
cat >> "$T/mqscan.conf" <<CONF
internal_networks = { "10.0.0.0/8" }
local_domains = { "example.org" }
CONF

# Q ARGS: run the tool; its stdout in $T/out, stderr in $T/err, status in $rc.
Q() {
    ${MQ_QT_WRAPPER:-} "$MQSCAN_QUARANTINE" -c "$T/mqscan.conf" "$@" > "$T/out" 2> "$T/err"
    rc=$?
    if [ -n "${MQ_QT_WRAPPER:-}" ] && [ "$rc" = 99 ]; then
        cat "$T/err"
        t_fail "$*: the wrapper found errors"
    fi
}
expect_rc() {   # expect_rc WANT WHAT
    if [ "$rc" != "$1" ]; then
        sed 's/^/  stderr: /' "$T/err"
        t_fail "$2: exit status $rc, wanted $1"
    fi
}
entry_count() {   # names in day directories (find does not follow a symlinked day)
    find "$QD" -mindepth 2 -maxdepth 2 ! -path "$QD/tmp/*" | wc -l
}
snapshot() {
    $QT snapshot "$QD" "$OUT" > "$T/$1"
}

# ---- a quarantine made by mqscand ----------------------------------------
"$PY" "$MQ_SRCDIR/policy.py" make "$T/mqueue.in" "$T/cases.json" "$MQ_SHARED_DIR" --no-ham \
    > /dev/null || t_fail "cannot build the test messages"
# A sample: every seventh message (all kinds of findings, all directions).
for qf in "$T"/mqueue.in/qf*; do
    n=${qf##*/qfT}
    if [ $(( 10#$n % 7 )) != 1 ]; then
        rm -f "$qf" "$T/mqueue.in/df${qf##*/qf}"
    fi
done
"$MQSCAND" -c "$T/mqscan.conf" --once -f 2> "$T/mqscand.log" ||
    t_fail "mqscand --once exited $?"
grep -o 'quarantine=[^ ]*' "$T/mqscand.log" | sed 's/quarantine=//' | sort > "$T/log-ids"
nq=$(wc -l < "$T/log-ids")
[ "$nq" -ge 20 ] || t_fail "only $nq messages quarantined"
echo "mqscand quarantined $nq messages"
[ "$(entry_count)" = "$nq" ] || t_fail "$(entry_count) entry directories for $nq quarantined"

# ---- list ------------------------------------------------------------------
Q list
expect_rc 0 list
[ ! -s "$T/err" ] || t_fail "list wrote to stderr: $(cat "$T/err")"
[ "$(wc -l < "$T/out")" = "$nq" ] || t_fail "list printed $(wc -l < "$T/out") lines for $nq entries"
cut -f1 "$T/out" | sort | cmp -s - "$T/log-ids" || t_fail "list IDs differ from mqscand's log"
LINE_RE='^[0-9]{8}-[A-Za-z0-9]+-[a-z0-9]{6}\t[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z'
LINE_RE+='\t(replace|delete|quarantine-only)\t[a-z, ]+\t[^\t]+\t[^\t]*$'
! grep -Pv "$LINE_RE" "$T/out" || t_fail "list lines are not ID DATE ACTION REASON SENDER SUBJECT"
LC_ALL=C sort -c -t"$TAB" -k2,2r -k1,1r "$T/out" || t_fail "list is not newest first"
$QT list "$QD" > "$T/want" || t_fail "quarantine_tools.py list"
diff "$T/want" "$T/out" > /dev/null || { diff "$T/want" "$T/out" | head; t_fail "list output"; }
Q list --oldest-first
expect_rc 0 "list --oldest-first"
$QT list "$QD" --oldest-first | cmp -s - "$T/out" || t_fail "list --oldest-first"

check_filter() {   # check_filter MIN-LINES ARGS...
    local min=$1
    shift
    Q list "$@"
    expect_rc 0 "list $*"
    $QT list "$QD" "$@" > "$T/want"
    diff "$T/want" "$T/out" > /dev/null || { diff "$T/want" "$T/out" | head; t_fail "list $*"; }
    [ "$(wc -l < "$T/out")" -ge "$min" ] || t_fail "list $*: only $(wc -l < "$T/out") lines"
    echo "  list $*: $(wc -l < "$T/out") entries"
}
check_filter 1 --sender 'SENDER-*@Example.NET'
check_filter 1 --sender 'user-1?@example.org'
check_filter 1 --reason banned
check_filter 1 --reason INFECTED
check_filter 1 --reason banned --sender '*@example.net'
check_filter 0 --sender 'nobody@nowhere.test'
check_filter "$nq" --since "$(date -u +%F)"
check_filter 0 --since "$(date -u -d tomorrow +%F)"
for bad in "--since 2026-13-01" "--since yesterday" "--since 2026-02-30" "--older-than 3" \
           "--to a@example.org" "--bogus" "extra"; do
    Q list $bad
    expect_rc 64 "list $bad"
done

# ---- show ------------------------------------------------------------------
ID1=$(head -1 "$T/log-ids")
Q show "$ID1"
expect_rc 0 "show $ID1"
$QT show "$QD" "$ID1" "$T/out" || t_fail "show $ID1"
grep -q '^header: Subject: ' "$T/out" || t_fail "show prints no Subject header"
grep -q '^header: Date: ' "$T/out" || t_fail "show prints no Date header"
grep -q '^file: qf [0-9]*$' "$T/out" || t_fail "show lists no qf"
for id in $(cat "$T/log-ids"); do
    Q show "$id"
    expect_rc 0 "show $id"
    $QT show "$QD" "$id" "$T/out" || t_fail "show $id"
done
echo "  show: all $nq entries as read independently"

# ---- release -----------------------------------------------------------------
# ID1's cleaned copy is still in the outgoing queue: the release steps aside.
qid1=$(echo "$ID1" | cut -d- -f2)
[ -f "$OUT/qf$qid1" ] || t_fail "no cleaned copy of $qid1 queued (action replace expected)"
snapshot before-release
Q release "$ID1"
expect_rc 0 "release $ID1"
[ "$(cat "$T/out")" = "released $ID1 as ${qid1}A to the original recipients" ] ||
    t_fail "release said: $(cat "$T/out")"
$QT release "$QD" "$ID1" "$OUT" "${qid1}A" || t_fail "released copy of $ID1"
cmp -s "$OUT/df${qid1}A" "$(find "$QD" -path "*/${ID1#*-}/df")" || t_fail "df not byte-identical"
me=$(id -un)
tail -2 "$QD/${ID1%%-*}/${ID1#*-}/meta" | head -1 |
    grep -Eq "^released: [0-9]+ $me ${qid1}A -\$" || t_fail "meta does not record the release"
tail -1 "$QD/${ID1%%-*}/${ID1#*-}/meta" | grep -qx end || t_fail "meta does not end in end"
[ ! -e "$QD/${ID1%%-*}/${ID1#*-}/meta.tmp" ] || t_fail "meta.tmp left behind"
Q show "$ID1"
grep -Eq "^released: [0-9T:-]+Z by $me as ${qid1}A to the original recipients\$" "$T/out" ||
    t_fail "show does not print the release"
$QT show "$QD" "$ID1" "$T/out" || t_fail "show after release"
Q list
grep -q "^$ID1$TAB" "$T/out" || t_fail "a released entry is no longer listed"
# Only qfIDA and dfIDA are new in the outgoing queue, and nothing changed there.
snapshot after-release
diff "$T/before-release" "$T/after-release" | grep '^[<>]' | grep -v "/quarantine/" |
    awk '{ print $1 " " $2 }' | sort > "$T/changed"
printf '> %s\n> %s\n' "$OUT/df${qid1}A" "$OUT/qf${qid1}A" | sort | cmp -s - "$T/changed" ||
    { cat "$T/changed"; t_fail "release changed more than the outgoing qf/df"; }
echo "  release $ID1 -> ${qid1}A"

# A second release of the same entry is a new message: B.
Q release "$ID1"
expect_rc 0 "second release"
grep -q " as ${qid1}B " "$T/out" || t_fail "second release: $(cat "$T/out")"
[ "$(grep -c '^released: ' "$QD/${ID1%%-*}/${ID1#*-}/meta")" = 2 ] || t_fail "two releases"

# ID2 with its cleaned copy gone (delivered): the original queue ID, --to.
ID2=$(sed -n 2p "$T/log-ids")
qid2=$(echo "$ID2" | cut -d- -f2)
rm -f "$OUT/qf$qid2" "$OUT/df$qid2"
for bad in 'a b@example.org' '<x@example.org>' 'x@example' '"q"@example.org' 'x@@example.org' \
           "$(printf 'x@example.org\nRPFD:<y@example.org>')" 'x@[10.0.0.1]' '|cmd@example.org' \
           '/etc/passwd@example.org' 'a%b@example.org' 'a..b@example.org' '.a@example.org' \
           'x@-example.org' "$(printf 'x%.0s' $(seq 1 250))@example.org" ''; do
    snapshot before-bad
    Q release "$ID2" --to "$bad"
    expect_rc 64 "release --to '$bad'"
    grep -q 'refusing recipient' "$T/err" || t_fail "release --to '$bad': $(cat "$T/err")"
    snapshot after-bad
    cmp -s "$T/before-bad" "$T/after-bad" || t_fail "release --to '$bad' changed something"
done
Q release "$ID2" --to postmaster@example.org
expect_rc 0 "release --to"
[ "$(cat "$T/out")" = "released $ID2 as $qid2 to postmaster@example.org" ] ||
    t_fail "release --to said: $(cat "$T/out")"
$QT release "$QD" "$ID2" "$OUT" "$qid2" --to postmaster@example.org ||
    t_fail "release --to: outgoing qf"
grep -Eq "^released: [0-9]+ $me $qid2 postmaster@example.org\$" \
    "$QD/${ID2%%-*}/${ID2#*-}/meta" || t_fail "meta does not record release --to"
echo "  release $ID2 --to postmaster@example.org -> $qid2"

# ---- invalid IDs: 64, nothing read or changed -----------------------------------
long=$(printf 'A%.0s' $(seq 1 300))
snapshot before-bad
for bad in "../x" "20261124-../../etc-aaaaaa" "" "20261124-$long-aaaaaa" "$long" \
           "${ID1%/*}/" "${ID1}/../x" "${ID1%%-*}/${ID1#*-}" "../../../etc/passwd" \
           "${ID1%%-*}-${qid1}-abc" "${ID1%%-*}-${qid1}-abcdefg" "${ID1%%-*}-$qid1" \
           "$(echo "$ID1" | sed 's/^./X/')" "$ID1 " " $ID1" "$ID1"$'\n' $'\n'"$ID1" \
           "${ID1}-x" "/$ID1" "$ID1/" "${ID1%%-*}-.-aaaaaa" "${ID1%%-*}-..-${ID1##*-}"; do
    for cmd in show release delete; do
        Q "$cmd" "$bad"
        expect_rc 64 "$cmd '$bad'"
        grep -q 'invalid entry ID' "$T/err" || t_fail "$cmd '$bad': $(cat "$T/err")"
    done
    # Checked before the configuration is read.
    "$MQSCAN_QUARANTINE" -c /nonexistent.conf delete "$bad" 2> /dev/null
    rc=$?
    [ $rc = 64 ] || t_fail "delete '$bad' with no configuration: $rc, not 64"
done
snapshot after-bad
cmp -s "$T/before-bad" "$T/after-bad" || t_fail "an invalid ID changed something"
missing="${ID1%-*}-zzzzzz"
for cmd in show release delete; do
    Q "$cmd" "$missing"
    expect_rc 66 "$cmd of a missing entry"
done
Q show "20010101-$qid1-aaaaaa"
expect_rc 66 "show in a missing day"
for args in "" "show" "show a b" "delete" "purge" "purge --older-than -1" \
            "purge --older-than x" "purge --older-than 36501" "frobnicate"; do
    Q $args
    expect_rc 64 "'$args'"
done
"$MQSCAN_QUARANTINE" -c /nonexistent.conf list 2> /dev/null
rc=$?
[ $rc = 78 ] || t_fail "missing configuration: $rc, not 78"
echo "  invalid IDs, options and addresses refused, nothing touched"

# ---- delete ------------------------------------------------------------------------
ID3=$(sed -n 3p "$T/log-ids")
before=$(entry_count)
snapshot before-delete
Q delete "$ID3"
expect_rc 0 "delete $ID3"
[ "$(cat "$T/out")" = "deleted $ID3" ] || t_fail "delete said: $(cat "$T/out")"
[ ! -e "$QD/${ID3%%-*}/${ID3#*-}" ] || t_fail "$ID3 still there"
[ "$(entry_count)" = $((before - 1)) ] || t_fail "delete removed more than one entry"
snapshot after-delete
diff "$T/before-delete" "$T/after-delete" | grep '^[<>]' | grep -v "/${ID3#*-}" |
    grep -v "^. $QD/${ID3%%-*} " | grep -v "^. $QD/tmp " && t_fail "delete changed another entry"
[ -z "$(ls -A "$QD/tmp")" ] || t_fail "delete left something in tmp/: $(ls -A "$QD/tmp")"
Q delete "$ID3"
expect_rc 66 "second delete"
echo "  delete $ID3"

# ---- symlinks and strangers --------------------------------------------------------
passwd_before=$(stat -c '%i %s %Y %h %F' /etc/passwd; sha256sum < /etc/passwd)
ID4=$(sed -n 4p "$T/log-ids")
E4=$QD/${ID4%%-*}/${ID4#*-}
ln -s /etc/passwd "$E4/part-9"
Q show "$ID4"
expect_rc 0 "show with a symlink"
grep -qx 'file: part-9 (symlink, not followed)' "$T/out" || t_fail "show: the symlink"
Q delete "$ID4"
expect_rc 0 "delete with part-9 -> /etc/passwd"
[ ! -e "$E4" ] && [ ! -L "$E4" ] || t_fail "entry with a symlink not deleted"
[ "$(stat -c '%i %s %Y %h %F' /etc/passwd; sha256sum < /etc/passwd)" = "$passwd_before" ] ||
    t_fail "/etc/passwd changed"
echo "  delete: the symlink part-9 -> /etc/passwd removed itself, /etc/passwd untouched"

# An unknown name: refused, left whole.
ID5=$(sed -n 5p "$T/log-ids")
E5=$QD/${ID5%%-*}/${ID5#*-}
echo planted > "$E5/notes.txt"
snapshot before-refuse
Q delete "$ID5"
expect_rc 74 "delete with an unknown name"
grep -q 'notes.txt' "$T/err" || t_fail "delete did not name the stranger"
snapshot after-refuse
cmp -s "$T/before-refuse" "$T/after-refuse" || t_fail "a refused delete changed something"
rm "$E5/notes.txt"

# A directory named like a part: refused.
mkdir "$E5/part-7"
Q delete "$ID5"
expect_rc 74 "delete with a directory inside"
rmdir "$E5/part-7"

# An entry directory that is a symlink to a decoy: refused, decoy intact.
mkdir -p "$T/decoy/T0000999-decoy1"
echo keep > "$T/decoy/T0000999-decoy1/qf"
echo keep > "$T/decoy/T0000999-decoy1/df"
DAY=${ID5%%-*}
ln -s "$T/decoy/T0000999-decoy1" "$QD/$DAY/T0000999-zzzzzz"
Q delete "$DAY-T0000999-zzzzzz"
expect_rc 74 "delete of a symlinked entry"
[ -L "$QD/$DAY/T0000999-zzzzzz" ] || t_fail "the symlinked entry is gone (refusal expected)"
Q list
expect_rc 74 "list with a symlinked entry"
grep -q "T0000999-zzzzzz" "$T/err" || t_fail "list does not report the symlinked entry"
[ "$(wc -l < "$T/out")" = "$(($(entry_count) - 1))" ] || t_fail "list lost other entries"
rm "$QD/$DAY/T0000999-zzzzzz"

# A damaged meta: list goes on and says so; show shows what it can.
ID6=$(sed -n 6p "$T/log-ids")
E6=$QD/${ID6%%-*}/${ID6#*-}
cp "$E6/meta" "$T/meta6"
head -c 40 "$T/meta6" > "$E6/meta"
Q list
expect_rc 74 "list with a truncated meta"
grep -q "$ID6" "$T/err" || t_fail "list does not report the truncated meta"
grep -q "$ID6" "$T/out" && t_fail "list shows an entry it cannot read"
Q show "$ID6"
expect_rc 74 "show of a truncated meta"
grep -q '^file: meta 40$' "$T/out" || t_fail "show of a damaged entry lists no files"
Q release "$ID6"
expect_rc 74 "release of a truncated meta"
cp "$T/meta6" "$E6/meta"
# A hard-linked df is refused by release.
ln "$E6/df" "$T/df6-link"
Q release "$ID6"
expect_rc 74 "release of a hard-linked df"
grep -q 'one link' "$T/err" || t_fail "release of a hard-linked df: $(cat "$T/err")"
rm "$T/df6-link"
echo "  symlinked entry, unknown names, damaged meta, hard link: refused"

# ---- purge --------------------------------------------------------------------------
# Backdate: two entries 10 days, one 3 days; one moved 10 days back with
# its meta time left at today (the two must agree to purge).
IDS=$(sed -n '7,10p' "$T/log-ids")
set -- $IDS
OLD1=$($QT backdate "$QD" "$1" 10)
OLD2=$($QT backdate "$QD" "$2" 10)
MID=$($QT backdate "$QD" "$3" 3)
MIXED=$($QT backdate "$QD" "$4" 10 --keep-time)
ln -s /etc/passwd "$QD/${OLD2%%-*}/${OLD2#*-}/part-9"
# A day directory that is a symlink, holding an entry-like directory.
mkdir -p "$T/decoy/T0000998-decoy2"
echo keep > "$T/decoy/T0000998-decoy2/meta"
ln -s "$T/decoy" "$QD/20200101"
before=$(entry_count)
Q list --since "$(date -u -d '4 days ago' +%F)"
grep -q "^$OLD1$TAB" "$T/out" && t_fail "list --since shows a 10-day-old entry"
grep -q "^$MID$TAB" "$T/out" || t_fail "list --since misses a 3-day-old entry"

Q purge --older-than 5
expect_rc 74 "purge --older-than 5 (the symlinked day is reported)"
grep -q '20200101' "$T/err" || t_fail "purge does not report the symlinked day"
printf 'purged %s\n' "$OLD1" "$OLD2" | sort > "$T/want"
sort "$T/out" | cmp -s - "$T/want" || t_fail "purge --older-than 5 said: $(cat "$T/out")"
[ ! -e "$QD/${OLD1%%-*}/${OLD1#*-}" ] && [ ! -e "$QD/${OLD2%%-*}/${OLD2#*-}" ] ||
    t_fail "old entries still there"
[ -d "$QD/${MID%%-*}/${MID#*-}" ] || t_fail "purge 5 removed a 3-day-old entry"
[ -d "$QD/${MIXED%%-*}/${MIXED#*-}" ] || t_fail "purge removed an entry whose meta time is today"
[ "$(entry_count)" = $((before - 2)) ] || t_fail "purge 5 removed $((before - $(entry_count))) entries"
[ -L "$QD/20200101" ] && [ "$(cat "$T/decoy/T0000998-decoy2/meta")" = keep ] &&
    [ "$(cat "$T/decoy/T0000999-decoy1/qf")" = keep ] || t_fail "purge touched the decoy"
[ "$(stat -c '%i %s %Y %h %F' /etc/passwd; sha256sum < /etc/passwd)" = "$passwd_before" ] ||
    t_fail "/etc/passwd changed"
rm "$QD/20200101"

Q purge --older-than 1
expect_rc 0 "purge --older-than 1"
[ "$(cat "$T/out")" = "purged $MID" ] || t_fail "purge --older-than 1 said: $(cat "$T/out")"
[ ! -e "$QD/${MID%%-*}" ] || t_fail "the empty day directory of $MID is still there"
[ -d "$QD/${MIXED%%-*}/${MIXED#*-}" ] || t_fail "purge 1 removed an entry whose meta time is today"
echo "  purge: only the backdated entries, day dir and meta time agreeing"

Q purge --older-than 0
expect_rc 0 "purge --older-than 0"
[ "$(entry_count)" = 0 ] || t_fail "purge --older-than 0 left $(entry_count) entries"
[ -z "$(ls -A "$QD/tmp")" ] || t_fail "purge left something in tmp/"
Q list
expect_rc 0 "list of an empty quarantine"
[ ! -s "$T/out" ] || t_fail "list of an empty quarantine printed something"
[ "$(stat -c '%i %s %Y %h %F' /etc/passwd; sha256sum < /etc/passwd)" = "$passwd_before" ] ||
    t_fail "/etc/passwd changed"
[ -f "$OUT/qf${qid1}A" ] && [ -f "$OUT/qf$qid2" ] || t_fail "purge touched the outgoing queue"
echo PASS
