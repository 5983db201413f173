#!/bin/sh
# Install the n2n edge: binary, example configuration, systemd units.
#
#   sudo crates/edge/dist/install.sh            build (release) and install
#   sudo BIN=/path/to/edge crates/edge/dist/install.sh   install a built binary
#   DESTDIR=/tmp/stage BIN=... crates/edge/dist/install.sh   stage only (packaging,
#                                         no user creation, chown or systemctl)
#
# Variables: PREFIX (default /usr/local; the binary goes to $PREFIX/sbin),
# SYSCONFDIR (default /etc), UNITDIR (default /etc/systemd/system).
# An existing /etc/n2n/edge.conf is never overwritten.
#
# Afterwards: edit /etc/n2n/edge.conf, then
#   systemctl enable --now edge              (one edge), or
#   cp /etc/n2n/edge.conf /etc/n2n/edge-NAME.conf   (own -d and -t per instance)
#   systemctl enable --now edge@NAME
set -eu

PREFIX=${PREFIX:-/usr/local}
SYSCONFDIR=${SYSCONFDIR:-/etc}
UNITDIR=${UNITDIR:-/etc/systemd/system}
DESTDIR=${DESTDIR:-}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)

if [ -z "${BIN:-}" ]; then
    echo "building edge (release)..."
    BIN=$(cargo build --release -p n2n-edge --bin edge \
            --manifest-path "$repo/Cargo.toml" --message-format=json-render-diagnostics |
          sed -n 's/.*"executable":"\([^"]*\/edge\)".*/\1/p' | tail -n 1)
fi
[ -x "$BIN" ] || { echo "install.sh: no executable edge binary at '$BIN'" >&2; exit 1; }

sbin="$DESTDIR$PREFIX/sbin"
conf="$DESTDIR$SYSCONFDIR/n2n"
units="$DESTDIR$UNITDIR"

install -d -m 0755 "$sbin" "$units"
install -m 0755 "$BIN" "$sbin/edge"
for u in edge.service edge@.service; do
    sed -e "s|/usr/local/sbin/edge|$PREFIX/sbin/edge|" \
        -e "s|/etc/n2n/|$SYSCONFDIR/n2n/|g" "$here/$u" > "$units/$u"
    chmod 0644 "$units/$u"
done

if [ -z "$DESTDIR" ] && [ "$(id -u)" = 0 ]; then
    if ! getent passwd n2n >/dev/null; then
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
                --shell /usr/sbin/nologin n2n
    fi
    install -d -m 0750 -o root -g n2n "$conf"
    if [ ! -e "$conf/edge.conf" ]; then
        install -m 0640 -o root -g n2n "$here/edge.conf" "$conf/edge.conf"
    fi
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        systemctl daemon-reload
    fi
else
    install -d -m 0750 "$conf"
    [ -e "$conf/edge.conf" ] || install -m 0640 "$here/edge.conf" "$conf/edge.conf"
fi

echo "installed $sbin/edge, $units/edge.service, $units/edge@.service, $conf/edge.conf"
echo "next: edit $SYSCONFDIR/n2n/edge.conf, then: systemctl enable --now edge"
