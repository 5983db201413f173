#!/bin/sh
# Install the n2n supernode: binary, systemd unit and example configuration.
#
#   cargo build --release -p n2n-supernode
#   sudo crates/supernode/dist/install.sh [path/to/supernode]
#   sudo systemctl enable --now supernode
#
# Environment: PREFIX (default /usr/local; the binary goes to $PREFIX/sbin),
# DESTDIR (staging root, default empty), UNITDIR (default /etc/systemd/system).
# An existing /etc/n2n/supernode.conf is never overwritten.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
UNITDIR=${UNITDIR:-/etc/systemd/system}
BIN=${1:-${CARGO_TARGET_DIR:-target}/release/supernode}

if [ ! -x "$BIN" ]; then
    echo "install.sh: no supernode binary at '$BIN' (build it with: cargo build --release -p n2n-supernode)" >&2
    exit 1
fi

install -d -m 0755 "$DESTDIR$PREFIX/sbin" "$DESTDIR$UNITDIR" "$DESTDIR/etc/n2n"
install -m 0755 "$BIN" "$DESTDIR$PREFIX/sbin/supernode"
sed "s|/usr/local/sbin/supernode|$PREFIX/sbin/supernode|" "$here/supernode.service" \
    > "$DESTDIR$UNITDIR/supernode.service"
chmod 0644 "$DESTDIR$UNITDIR/supernode.service"
if [ -e "$DESTDIR/etc/n2n/supernode.conf" ]; then
    echo "install.sh: keeping existing $DESTDIR/etc/n2n/supernode.conf"
else
    install -m 0644 "$here/supernode.conf" "$DESTDIR/etc/n2n/supernode.conf"
fi

echo "installed $DESTDIR$PREFIX/sbin/supernode and $DESTDIR$UNITDIR/supernode.service"
if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload
    echo "start it with: systemctl enable --now supernode"
fi
