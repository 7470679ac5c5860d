#!/bin/bash
# policy.sh - the content policy over real messages, per direction.
#
# policy.py writes sendmail queue files for every case (ClamAV test files
# attached, zipped and nested; banned names and types, in zips and renamed;
# encrypted and over-deep archives; message/partial; a mass mailer; the whole
# ham corpus), each once per direction (inbound, outbound, internal, by the
# relay sendmail recorded). mqscand --once processes them with the shipped
# rule files and templates, and policy.py checks every decision against the
# default policy. A second run with a custom policy (inbound infected ->
# quarantine-only, outbound banned -> delete) checks that the configuration
# is obeyed. No sendmail needed.
set -u
. "${MQ_SRCDIR:?}/lib.sh"
[ -d "${MQ_TESTSIGS:-}" ] || t_skip "no test signatures"
[ -d /usr/share/clamav-testfiles ] || t_skip "no /usr/share/clamav-testfiles"
[ -d "$MQ_SHARED_DIR/corpus/ham" ] || t_skip "no corpus"
T=$(t_tmpdir policy)

# The test signatures plus one mass-mailer signature made here.
mkdir -p "$T/sigs"
cp "$MQ_TESTSIGS"/*.ndb "$MQ_TESTSIGS"/*.hdb "$T/sigs/"
marker=$("$SMPAIR_PYTHON" -c 'import sys; sys.path.insert(0, sys.argv[1]); import policy; print(policy.WORM_MARKER.hex())' "$MQ_SRCDIR")
echo "MqScan.Test.Worm.Mydoom.A:0:*:$marker" > "$T/sigs/mqscan-worm.ndb"

run_policy() {   # run_policy NAME [extra config lines] [--expect FILE]
    local name=$1 extra=$2 expect=${3:-}
    local D=$T/$name
    mkdir -p "$D/mqueue.in" "$D/mqueue.out"
    t_write_config "$D/mqscan.conf" "$D"
    cat >> "$D/mqscan.conf" <<CONF
clamav_database_dir = "$T/sigs"
internal_networks = { "10.0.0.0/8" }
local_domains = { "example.org" }
$extra
CONF
    "$SMPAIR_PYTHON" "$MQ_SRCDIR/policy.py" make "$D/mqueue.in" "$D/cases.json" "$MQ_SHARED_DIR" ||
        t_fail "cannot build the test messages"
    "$MQSCAND" -c "$D/mqscan.conf" --once -f 2> "$D/mqscand.log"
    rc=$?
    grep -E 'processed|error' "$D/mqscand.log" | grep -v ' verdict=' | sed 's/^/  /'
    [ "$rc" = 0 ] || t_fail "$name: mqscand --once exited $rc"
    "$SMPAIR_PYTHON" "$MQ_SRCDIR/policy.py" check "$D/cases.json" "$D/mqscand.log" \
        "$D/mqueue.out" "$D/quarantine" $expect || t_fail "$name: decisions differ from the policy"
    [ -z "$(ls "$D/mqueue.in" | grep '^qf')" ] || t_fail "$name: incoming queue not empty"
    # The hostile names ("../../etc/passwd", ...) created nothing anywhere.
    [ -z "$(find "$T" -name passwd -o -name shadow -o -name 'x' -o -name '*break*')" ] ||
        t_fail "$name: a file was created from a name in a message"
}

run_policy default ""

cat > "$T/custom.json" <<'JSON'
{"inbound": {"infected": "quarantine-only", "banned": "replace", "limits": "replace",
             "encrypted": "replace", "unscannable": "replace"},
 "outbound": {"infected": "replace", "banned": "delete", "limits": "replace",
              "encrypted": "deliver", "unscannable": "replace"},
 "internal": {"infected": "replace", "banned": "deliver", "limits": "replace",
              "encrypted": "deliver", "unscannable": "replace"}}
JSON
run_policy custom 'policy inbound {
    infected = "quarantine-only"
}
policy outbound {
    banned = "delete"
}' "--expect $T/custom.json"
echo PASS
