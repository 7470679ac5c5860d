# lib.sh - shared by the shell tests: requirements, temp dirs, mqscand config.
#
# A shell test that cannot run here (not root, no sendmail) exits 77 (skip),
# unless MQSCAN_REQUIRE_E2E is set (as CI does), where a skip would hide a
# broken test: then it fails with 99.

. "${MQ_SRCDIR:?MQ_SRCDIR not set}/smpair.sh"

# mqscand wants absolute paths without "..": resolve the shared directory.
[ -d "${MQ_SHARED_DIR:-}" ] && MQ_SHARED_DIR=$(cd "$MQ_SHARED_DIR" && pwd -P)
[ -d "${MQ_TESTSIGS:-}" ] && MQ_TESTSIGS=$(cd "$MQ_TESTSIGS" && pwd -P)
# The shipped rule files and templates, from the source tree.
MQ_CONFDIR=$(cd "$MQ_SRCDIR/../conf" && pwd -P)

t_skip() {
    echo "SKIP: $*"
    if [ -n "${MQSCAN_REQUIRE_E2E:-}" ]; then
        echo "MQSCAN_REQUIRE_E2E is set: failing instead of skipping"
        exit 99
    fi
    exit 77
}

t_fail() {
    echo "FAIL: $*"
    exit 1
}

t_require_sendmail_pair() {
    [ "$(id -u)" = 0 ] || t_skip "needs root (private UTS namespace for sendmail)"
    [ -x "$SMPAIR_SENDMAIL" ] || t_skip "no $SMPAIR_SENDMAIL (apt-get install sendmail-bin)"
    [ -f /usr/share/sendmail/cf/m4/cf.m4 ] || t_skip "no sendmail-cf"
    command -v m4 >/dev/null || t_skip "no m4"
    "$SMPAIR_PYTHON" -c 'import aiosmtpd' 2>/dev/null || t_skip "no python3-aiosmtpd"
    [ -d "${MQ_TESTSIGS:-}" ] || t_skip "no test signatures at ${MQ_TESTSIGS:-}"
}

# t_tmpdir NAME: a fresh private directory under the build tree (sendmail
# refuses alias files in world-writable directories such as /tmp).
t_tmpdir() {
    local d="$MQ_BUILDDIR/tmp-$1"
    rm -rf "$d"
    mkdir -p "$d"
    chmod 700 "$d"
    (cd "$d" && pwd)
}

# t_write_config FILE DIR: an mqscand configuration for the pair in DIR.
t_write_config() {
    cat > "$1" <<CONF
incoming_queue_dir = "$2/mqueue.in"
outgoing_queue_dir = "$2/mqueue.out"
quarantine_dir = "$2/quarantine"
hold_dir = "$2/hold"
state_dir = "$2/state"
scan_tmp_dir = "$2/scantmp"
pid_file = "$2/mqscand.pid"
# The tests' sendmail pairs run as root, so mqscand stays root too;
# privdrop.sh covers running as another user.
user = ""
clamav_database_dir = "$MQ_TESTSIGS"
filename_rules = "$MQ_CONFDIR/filename.rules"
filetype_rules = "$MQ_CONFDIR/filetype.rules"
template_dir = "$MQ_CONFDIR/templates"
postmaster = "postmaster@mqscan.test"
local_domains = { "mqscan.test" }
batch_max_wait = 0.2
rescan_interval = 5
# Spam checks with the shipped word file and no site lists; no SPF (the
# system resolver is not ours to depend on) and no classifier unless a
# test sets them up itself.
spam_words = "$MQ_CONFDIR/spam.words"
sender_allow = ""
sender_block = ""
recipient_block = ""
ip_allow = ""
ip_block = ""
spf_check = false
bayes_db = ""
CONF
}

# t_wait_empty DIR SECONDS: wait until DIR holds no qf file.
t_wait_empty() {
    local i
    for i in $(seq 1 $(($2 * 10))); do
        ls "$1" | grep -q '^qf' || return 0
        sleep 0.1
    done
    return 1
}
