#!/bin/sh
# Install n2n-rs from a source checkout (what the packages hold, under /usr/local):
#
#   cargo build --release --locked --bin edge --bin supernode --bin n2n-decode
#   sudo dist/install.sh
#
# Installs /usr/local/sbin/{edge,supernode}, /usr/local/bin/n2n-decode, the systemd
# units edge.service, edge@.service and supernode.service (/etc/systemd/system), the
# example /etc/n2n/edge.conf and /etc/n2n/supernode.conf (an existing file is never
# overwritten), the man pages edge(8) and supernode(1), and the system user n2n the
# edge units run as. Nothing is enabled or started.
#
# Variables: PREFIX (default /usr/local), UNITDIR (default /etc/systemd/system),
# DESTDIR (stage into a folder instead; no user is created then), CARGO_TARGET_DIR.
# Uses crates/edge/dist/install.sh and crates/supernode/dist/install.sh.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
case "$target" in /*) ;; *) target="$root/$target" ;; esac
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
export PREFIX DESTDIR

for b in edge supernode n2n-decode; do
    if [ ! -x "$target/release/$b" ]; then
        echo "install.sh: no $target/release/$b; build first:" >&2
        echo "  cargo build --release --locked --bin edge --bin supernode --bin n2n-decode" >&2
        exit 1
    fi
done

BIN="$target/release/edge" "$root/crates/edge/dist/install.sh"
"$root/crates/supernode/dist/install.sh" "$target/release/supernode"
install -d -m 0755 "$DESTDIR$PREFIX/bin" "$DESTDIR$PREFIX/share/man/man8" \
    "$DESTDIR$PREFIX/share/man/man1"
install -m 0755 "$target/release/n2n-decode" "$DESTDIR$PREFIX/bin/n2n-decode"
install -m 0644 "$root/dist/man/edge.8" "$DESTDIR$PREFIX/share/man/man8/edge.8"
install -m 0644 "$root/dist/man/supernode.1" "$DESTDIR$PREFIX/share/man/man1/supernode.1"
echo "installed $DESTDIR$PREFIX/bin/n2n-decode and the man pages edge(8), supernode(1)"
echo "next: edit /etc/n2n/supernode.conf or /etc/n2n/edge.conf, then"
echo "  systemctl enable --now supernode   |   systemctl enable --now edge   |   edge@NAME"
