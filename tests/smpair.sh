# smpair.sh - start and stop a private sendmail pair and an SMTP sink on loopback.
# (bash: sourced by bash scripts only)
#
# Sourced by the end-to-end tests and the demo. Nothing outside $SMPAIR_DIR is
# touched: queue dirs, configuration, aliases and pid files all live there.
#
#   smpair_setup DIR BASEPORT   write in.cf/out.cf; ports BASEPORT (incoming SMTP),
#                               BASEPORT+1 (sink), BASEPORT+2 (outgoing, never listens)
#   smpair_start                start the incoming sendmail (queue only) and the sink
#                               (sink.py: DIR/sink/N.eml raw bytes, N.env envelope)
#   smpair_flush_out            run the outgoing queue once, in the foreground
#   smpair_stop                 stop every process started here, by PID
#
# With SMPAIR_USER set (e.g. nobody), the incoming sendmail runs as that
# user, both trust it (confTRUSTED_USER) and both queue directories belong
# to it: the set-up of a gateway where mqscand drops root.
#
# Sendmail sleeps 60 s at start-up when the host name is unqualified, so every
# sendmail runs in a private UTS namespace with a qualified name (needs root).

SMPAIR_SENDMAIL=${SMPAIR_SENDMAIL:-/usr/sbin/sendmail}
SMPAIR_PYTHON=${SMPAIR_PYTHON:-/usr/bin/python3}
# Where sink.py lives: beside this file.
SMPAIR_LIBDIR=${SMPAIR_LIBDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}

smpair_run_sendmail() {
    local as=
    if [ "${1:-}" = --as-user ]; then
        shift
        as="setpriv --reuid=$SMPAIR_USER --regid=$(id -g "$SMPAIR_USER") --clear-groups"
    fi
    if [ "$(id -u)" = 0 ] && unshare -u true 2>/dev/null; then
        unshare -u sh -c 'hostname mqscan-ci.test && exec "$@"' sh $as "$SMPAIR_SENDMAIL" "$@"
    else
        "$SMPAIR_SENDMAIL" "$@"
    fi
}

smpair_setup() {
    SMPAIR_DIR=$1
    SMPAIR_PORT_IN=$2
    SMPAIR_PORT_SINK=$(($2 + 1))
    SMPAIR_PORT_OUT=$(($2 + 2))
    mkdir -p "$SMPAIR_DIR"
    SMPAIR_DIR=$(cd "$SMPAIR_DIR" && pwd)
    chmod 700 "$SMPAIR_DIR"
    mkdir -p "$SMPAIR_DIR/mqueue.in" "$SMPAIR_DIR/mqueue.out" "$SMPAIR_DIR/sink"
    chmod 700 "$SMPAIR_DIR/mqueue.in" "$SMPAIR_DIR/mqueue.out"
    local d=$SMPAIR_DIR
    printf 'hosts files\naliases files\n' > "$d/service.switch"
    printf 'postmaster: root\nMAILER-DAEMON: postmaster\n' > "$d/aliases"
    cat > "$d/common.m4" <<M4
divert(-1)
include(\`/usr/share/sendmail/cf/m4/cf.m4')
divert(0)dnl
OSTYPE(\`linux')dnl
define(\`confDOMAIN_NAME', \`mqscan.test')dnl
define(\`confDONT_PROBE_INTERFACES', \`True')dnl
define(\`confDONT_BLAME_SENDMAIL', \`TrustStickyBit')dnl
define(\`confSERVICE_SWITCH_FILE', \`$d/service.switch')dnl
define(\`ALIAS_FILE', \`$d/aliases')dnl
define(\`confHOST_STATUS_DIRECTORY', \`')dnl
define(\`confLOG_LEVEL', \`9')dnl
define(\`confTO_IDENT', \`0s')dnl
define(\`confBIND_OPTS', \`-DNSRCH -DEFNAMES')dnl
define(\`confQUEUE_LA', \`100')dnl
define(\`confREFUSE_LA', \`100')dnl
define(\`confMAX_DAEMON_CHILDREN', \`0')dnl
define(\`confCONNECTION_RATE_THROTTLE', \`0')dnl
define(\`confMAX_MESSAGE_SIZE', \`0')dnl
define(\`confMAX_HEADERS_LENGTH', \`1048576')dnl
define(\`confMAX_MIME_HEADER_LENGTH', \`0/0')dnl
FEATURE(\`no_default_msa')dnl
FEATURE(\`nocanonify')dnl
FEATURE(\`accept_unresolvable_domains')dnl
FEATURE(\`accept_unqualified_senders')dnl
M4
    cat > "$d/in.mc" <<M4
include(\`$d/common.m4')dnl
VERSIONID(\`mqscan-test incoming')dnl
define(\`QUEUE_DIR', \`$d/mqueue.in')dnl
define(\`confDELIVERY_MODE', \`queueonly')dnl
define(\`confPID_FILE', \`$d/in.pid')dnl
define(\`STATUS_FILE', \`$d/in.st')dnl
DAEMON_OPTIONS(\`Family=inet, Name=MTA-in, Addr=127.0.0.1, Port=$SMPAIR_PORT_IN')dnl
MAILER(\`local')dnl
MAILER(\`smtp')dnl
M4
    cat > "$d/out.mc" <<M4
include(\`$d/common.m4')dnl
VERSIONID(\`mqscan-test outgoing')dnl
define(\`QUEUE_DIR', \`$d/mqueue.out')dnl
define(\`confPID_FILE', \`$d/out.pid')dnl
define(\`STATUS_FILE', \`$d/out.st')dnl
define(\`SMART_HOST', \`esmtp:[127.0.0.1]')dnl
define(\`ESMTP_MAILER_ARGS', \`TCP \$h $SMPAIR_PORT_SINK')dnl
define(\`SMTP_MAILER_ARGS', \`TCP \$h $SMPAIR_PORT_SINK')dnl
define(\`RELAY_MAILER_ARGS', \`TCP \$h $SMPAIR_PORT_SINK')dnl
define(\`confDELIVERY_MODE', \`background')dnl
DAEMON_OPTIONS(\`Family=inet, Name=MTA-out, Addr=127.0.0.1, Port=$SMPAIR_PORT_OUT')dnl
MAILER(\`local')dnl
MAILER(\`smtp')dnl
M4
    if [ -n "${SMPAIR_USER:-}" ]; then
        printf "define(\`confTRUSTED_USER', \`%s')dnl\n" "$SMPAIR_USER" >> "$d/common.m4"
    fi
    m4 "$d/in.mc" > "$d/in.cf" && m4 "$d/out.mc" > "$d/out.cf" || return 1
    : > "$d/in.st"; : > "$d/out.st"
    if [ -n "${SMPAIR_USER:-}" ]; then
        chmod 711 "$d"
        : > "$d/in.pid"
        chown "$SMPAIR_USER" "$d/mqueue.in" "$d/mqueue.out" "$d/in.st" "$d/in.pid"
    fi
    smpair_run_sendmail -C "$d/out.cf" -bi >/dev/null 2>&1 || return 1
}

smpair_wait_port() {
    local port=$1 i
    for i in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "smpair: nothing listens on 127.0.0.1:$port" >&2
    return 1
}

smpair_port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

smpair_start() {
    local d=$SMPAIR_DIR p
    # Another run on the same ports would take our mail: refuse, loudly.
    for p in "$SMPAIR_PORT_IN" "$SMPAIR_PORT_SINK"; do
        smpair_port_free "$p" || { echo "smpair: 127.0.0.1:$p is already in use" >&2; return 1; }
    done
    rm -rf "$d/sink"
    PYTHONPATH="$SMPAIR_LIBDIR${PYTHONPATH:+:$PYTHONPATH}" \
        "$SMPAIR_PYTHON" -m aiosmtpd -n -l "127.0.0.1:$SMPAIR_PORT_SINK" \
        -c sink.RawSink "$d/sink" > "$d/sink.log" 2>&1 &
    echo $! > "$d/sink.pid"
    smpair_run_sendmail ${SMPAIR_USER:+--as-user} -C "$d/in.cf" -bd || return 1
    smpair_wait_port "$SMPAIR_PORT_IN" && smpair_wait_port "$SMPAIR_PORT_SINK"
}

smpair_flush_out() {
    smpair_run_sendmail -C "$SMPAIR_DIR/out.cf" -q -v > "$SMPAIR_DIR/out-run.log" 2>&1
}

smpair_kill_pidfile() {
    local f=$1 pid
    [ -f "$f" ] || return 0
    pid=$(head -n 1 "$f")
    case $pid in ''|*[!0-9]*) return 0 ;; esac
    kill "$pid" 2>/dev/null
    rm -f "$f"
}

smpair_stop() {
    [ -n "${SMPAIR_DIR:-}" ] || return 0
    smpair_kill_pidfile "$SMPAIR_DIR/in.pid"
    smpair_kill_pidfile "$SMPAIR_DIR/sink.pid"
}
