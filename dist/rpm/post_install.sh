# n2n-rs %post: the system user the edge units run as, the group that may
# read /etc/n2n/edge.conf (it holds the key), and a systemd reload. Nothing is
# enabled or started: edit /etc/n2n/*.conf first.
if ! getent passwd n2n >/dev/null; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /sbin/nologin n2n
fi
# $1 = 1: first installation.
if [ "$1" = 1 ] && [ -f /etc/n2n/edge.conf ]; then
    chgrp n2n /etc/n2n/edge.conf
    chmod 0640 /etc/n2n/edge.conf
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
