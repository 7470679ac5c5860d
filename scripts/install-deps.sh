#!/bin/sh
# Installs what mqscan needs to build, test and run its demo on Debian 12,
# and gives the host a qualified name (sendmail stalls 60 s at every start
# without one). Run as root. Safe to run again.
set -eu

export DEBIAN_FRONTEND=noninteractive
packages="build-essential autoconf automake libtool pkg-config m4
  libclamav-dev libgmime-3.0-dev libglib2.0-dev libconfuse-dev
  libmagic-dev libarchive-dev clamav-daemon libsqlite3-dev sqlite3 chromium
  clamav-testfiles sendmail-bin sendmail-cf swaks python3-aiosmtpd util-linux
  valgrind libspf2-dev dnsmasq-base spamassassin spamd spamc iproute2
  clang libclang-rt-14-dev"

missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
        missing="$missing $p"
done

host=$(hostname)
case $host in
*.*) ;;
*)  if ! grep -q "^127\.0\.1\.1[[:space:]]\+$host\.mqscan\.test" /etc/hosts; then
        # First name on the first matching line must be the FQDN.
        sed -i "1i 127.0.1.1 $host.mqscan.test $host" /etc/hosts
    fi ;;
esac

if [ -n "$missing" ]; then
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
fi

# mqscand drops root for this user once started (mqscan.conf "user").
if ! getent passwd mqscan >/dev/null; then
    useradd --system --user-group --home-dir /var/lib/mqscan --no-create-home \
        --shell /usr/sbin/nologin mqscan
fi

# The spamd package enables a system spamd (127.0.0.1:783). The tests start
# their own on other ports and never use it; keep it off so that a test host
# runs no spamd nobody asked for. dnsmasq-base ships no service.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now spamd.service >/dev/null 2>&1 || true
fi
