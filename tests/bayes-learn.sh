#!/bin/bash
# bayes-learn.sh - mqscan-learn over small directories taken from the
# corpus: learning a directory (plain and maildir), learning it again
# changes nothing, a message learned as the other class moves, --forget,
# --stats, --top, symbolic links are not followed, exit codes.
# MQ_LEARN_WRAPPER (for example "valgrind -q --error-exitcode=99") is put
# in front of every mqscan-learn run.
set -u
. "${MQ_SRCDIR:?}/lib.sh"
[ -x "${MQSCAN_LEARN:-}" ] || t_fail "MQSCAN_LEARN is not set to the built tool"
HAM=${MQ_SHARED_DIR:-/nonexistent}/corpus/ham
SPAM=${MQ_SHARED_DIR:-/nonexistent}/corpus/spam
[ -d "$HAM" ] && [ -d "$SPAM" ] || t_skip "no corpus in MQ_SHARED_DIR"
T=$(t_tmpdir bayes-learn)
DB=$T/bayes.db
L() { ${MQ_LEARN_WRAPPER:-} "$MQSCAN_LEARN" --db "$DB" "$@"; }

# 20 ham in a plain directory, 10 more in a maildir; 20 spam.
mkdir -p "$T/ham" "$T/maildir/cur" "$T/maildir/new" "$T/maildir/tmp" "$T/spam"
ls "$HAM" | sort | head -20 | while read -r f; do cp "$HAM/$f" "$T/ham/"; done
ls "$HAM" | sort | sed -n 21,30p | while read -r f; do cp "$HAM/$f" "$T/maildir/cur/$f:2,S"; done
ls "$SPAM" | sort | head -20 | while read -r f; do cp "$SPAM/$f" "$T/spam/"; done
# Not followed: a link to a spam file in the ham directory.
ln -s "$T/spam/$(ls "$T/spam" | head -1)" "$T/ham/zz-link"
# Not looked at: dot files.
cp "$T/spam/$(ls "$T/spam" | head -1)" "$T/ham/.hidden"

stats() { L --stats | tr '\n' ' '; }

out=$(L --ham "$T/ham" "$T/maildir" 2>&1) || t_fail "learn ham: $out"
echo "$out" | grep -q "30 learned as ham, 0 unchanged, 0 failed" || t_fail "learn ham said: $out"
[ "$(stats)" = "ham: 30 spam: 0 ready: no (200 of each needed) " ] || t_fail "stats: $(stats)"
[ "$(stat -c %a "$DB")" = 640 ] || [ "$(stat -c %a "$DB")" = 600 ] || t_fail "mode $(stat -c %a "$DB")"

out=$(L --ham "$T/ham" "$T/maildir" 2>&1) || t_fail "learn ham again: $out"
echo "$out" | grep -q "0 learned as ham, 30 unchanged" || t_fail "learn again said: $out"
[ "$(stats)" = "ham: 30 spam: 0 ready: no (200 of each needed) " ] || t_fail "stats after again: $(stats)"

out=$(L --spam "$T/spam" 2>&1) || t_fail "learn spam: $out"
echo "$out" | grep -q "20 learned as spam" || t_fail "learn spam said: $out"

# One ham message learned as spam moves; forgetting it removes it.
one=$T/ham/$(ls "$T/ham" | head -1)
L --spam "$one" >/dev/null 2>&1 || t_fail "move"
[ "$(stats)" = "ham: 29 spam: 21 ready: no (200 of each needed) " ] || t_fail "stats after move: $(stats)"
L --forget "$one" >/dev/null 2>&1 || t_fail "forget"
[ "$(stats)" = "ham: 29 spam: 20 ready: no (200 of each needed) " ] || t_fail "stats after forget: $(stats)"
out=$(L --forget "$one" 2>&1) || t_fail "forget again: $out"
echo "$out" | grep -q "0 forgotten, 1 unchanged" || t_fail "forget again said: $out"

out=$(L --top 5) || t_fail "top"
[ "$(echo "$out" | grep -c '^spam tokens')" = 1 ] && [ "$(echo "$out" | grep -c '^ham tokens')" = 1 ] &&
    [ "$(echo "$out" | wc -l)" = 12 ] || t_fail "top: $out"

# Exit codes.
L --ham "$T/nonexistent" >/dev/null 2>&1; rc=$?
[ $rc = 66 ] || t_fail "missing path: $rc"
L --ham --spam "$T/ham" >/dev/null 2>&1; rc=$?
[ $rc = 64 ] || t_fail "two modes: $rc"
L --ham >/dev/null 2>&1; rc=$?
[ $rc = 64 ] || t_fail "no argument: $rc"
L --ham --quarantine '../../etc' >/dev/null 2>&1; rc=$?
[ $rc = 64 ] || t_fail "bad quarantine ID: $rc"
"$MQSCAN_LEARN" --db "$T/missing.db" --stats >/dev/null 2>&1; rc=$?
[ $rc = 69 ] || t_fail "stats of a missing database: $rc"
[ ! -e "$T/missing.db" ] || t_fail "--stats created a database"
"$MQSCAN_LEARN" --db "$T/missing.db" --top 3 >/dev/null 2>&1; rc=$?
[ $rc = 69 ] && [ ! -e "$T/missing.db" ] || t_fail "top of a missing database: $rc"
echo "not a database at all, really not............" > "$T/bad.db"
"$MQSCAN_LEARN" --db "$T/bad.db" --ham "$one" >/dev/null 2>&1; rc=$?
[ $rc = 69 ] || t_fail "learn into a non-database: $rc"

echo "PASS"
