#!/bin/sh
# Checks the packages dist/build-packages.sh made (as root, on Debian; CI runs it
# after the tests):
#
# * the .deb and the .rpm list exactly the expected files (rpm -qlp; the .deb may
#   add only Debian's copyright file) and mark /etc/n2n/*.conf as configuration;
# * dpkg -i installs the .deb on this machine: edge --version, supernode --version
#   n2n-decode --help and n2n-keygen run from where the package put them, the system user n2n
#   exists, /etc/n2n/edge.conf (it holds the key) is root:n2n 0640, and
#   systemd-analyze verify accepts the installed units (edge.service,
#   edge@rocks.service, supernode.service) without a warning about them. systemd
#   need not be PID 1: verify loads the unit files offline; starting the units is
#   not tried here (the end-to-end tests run the binaries);
# * the units can be enabled (offline), and dpkg -r removes the package, its
#   enable links, and keeps only the configuration files; dpkg --purge removes
#   those too; then a listing of the file system equals the one taken before the
#   installation (the system user n2n stays, as with Debian packages).
#
# The installation happens in a private mount namespace in which /etc, /usr and
# /var are overlays on this machine's own (writes go to a tmpfs that vanishes at
# the end): the real dpkg, libraries and systemd tools of this machine are used,
# but nothing the package does (files, the user n2n) is ever visible to other
# processes, such as end-to-end tests running at the same time. With
# N2N_PACKAGES_ON_HOST=1 the package is installed into the real system instead.
#
#   dist/check-packages.sh [PACKAGE_DIR]    (default: <target>/packages)
#
# Installs what it needs with apt-get when missing: rpm, systemd (systemd-analyze).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
case "$target" in /*) ;; *) target="$root/$target" ;; esac
dir=${1:-$target/packages}
PKG=n2n-rs
work=$(mktemp -d /tmp/n2n-check-packages.XXXXXX)

fail() {
    echo "check-packages: FAILED: $*" >&2
    exit 1
}
ok() { echo "check-packages: ok: $*"; }

cleanup() {
    rc=$?
    if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q 'install\|config-files'; then
        echo "check-packages: purging $PKG after a failure" >&2
        dpkg --purge "$PKG" >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || fail "needs root (dpkg -i)"
deb=$(ls "$dir"/${PKG}_*.deb 2>/dev/null | head -n 1)
rpm=$(ls "$dir"/${PKG}-*.rpm 2>/dev/null | head -n 1)
[ -f "$deb" ] || fail "no $PKG .deb in $dir (run dist/build-packages.sh)"
[ -f "$rpm" ] || fail "no $PKG .rpm in $dir (run dist/build-packages.sh)"
echo "check-packages: $deb"
echo "check-packages: $rpm"

need=""
command -v rpm >/dev/null || need="$need rpm"
command -v systemd-analyze >/dev/null || need="$need systemd"
if [ -n "$need" ]; then
    echo "check-packages: installing$need"
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $need >/dev/null ||
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends $need >/dev/null; }
fi

# Re-run inside a private mount namespace with overlays over /etc, /usr, /var.
if [ "${N2N_PACKAGES_ON_HOST:-0}" != 1 ] && [ -z "${N2N_PACKAGES_OVERLAY:-}" ]; then
    command -v unshare >/dev/null || fail "no unshare (util-linux); or set N2N_PACKAGES_ON_HOST=1"
    ov=$(mktemp -d /tmp/n2n-packages-overlay.XXXXXX)
    rc=0
    unshare --mount --propagation private \
        env N2N_PACKAGES_OVERLAY="$ov" sh "$0" "$@" || rc=$?
    rmdir "$ov" 2>/dev/null || true
    exit "$rc"
fi
if [ -n "${N2N_PACKAGES_OVERLAY:-}" ]; then
    ov=$N2N_PACKAGES_OVERLAY
    mount -t tmpfs n2n-packages "$ov"
    for d in etc usr var; do
        mkdir -p "$ov/$d/upper" "$ov/$d/work"
        mount -t overlay n2n-packages \
            -o "lowerdir=/$d,upperdir=$ov/$d/upper,workdir=$ov/$d/work" "/$d" ||
            fail "overlay over /$d (set N2N_PACKAGES_ON_HOST=1 to install into the real system)"
    done
    ok "installing into overlays of /etc, /usr, /var (private mount namespace)"
fi

# dpkg with a bounded wait for the lock (apt-get of a test may hold it).
dpkg_locked() {
    n=0
    while ! dpkg "$@" >"$work/dpkg.log" 2>&1; do
        if grep -q 'lock' "$work/dpkg.log" && [ "$n" -lt 60 ]; then
            n=$((n + 1))
            sleep 2
            continue
        fi
        cat "$work/dpkg.log" >&2
        return 1
    done
    cat "$work/dpkg.log"
}

# Sorted file lists must be equal: same_list NAME EXPECTED_FILE ACTUAL_FILE.
same_list() {
    if ! diff -u "$2" "$3" >"$work/diff"; then
        cat "$work/diff" >&2
        fail "$1 differs from the expected list (- expected, + actual)"
    fi
}
# The comparison itself can fail.
printf 'a\n' >"$work/x1"
printf 'a\nb\n' >"$work/x2"
if (same_list selftest "$work/x1" "$work/x2") 2>/dev/null; then
    fail "same_list does not detect a difference"
fi

cat >"$work/expected" <<'EOF'
/etc/n2n/edge.conf
/etc/n2n/supernode.conf
/usr/bin/n2n-decode
/usr/bin/n2n-keygen
/usr/bin/n2n-site
/usr/lib/systemd/system/edge.service
/usr/lib/systemd/system/edge@.service
/usr/lib/systemd/system/supernode.service
/usr/sbin/edge
/usr/sbin/supernode
/usr/share/doc/n2n-rs/LICENSE-APACHE
/usr/share/doc/n2n-rs/LICENSE-MIT
/usr/share/doc/n2n-rs/README.md
/usr/share/man/man1/n2n-site.1.gz
/usr/share/man/man1/supernode.1.gz
/usr/share/man/man8/edge.8.gz
EOF
printf '/etc/n2n/edge.conf\n/etc/n2n/supernode.conf\n' >"$work/expected-conf"
{ cat "$work/expected"; echo /usr/share/doc/n2n-rs/copyright; } | sort >"$work/expected-deb"

# --- contents of both packages -------------------------------------------------
dpkg-deb --fsys-tarfile "$deb" | tar -t | grep -v '/$' | sed 's|^\./|/|' | sort >"$work/deb-files"
same_list ".deb contents" "$work/expected-deb" "$work/deb-files"
dpkg-deb --info "$deb" conffiles | sort >"$work/deb-conf"
same_list ".deb conffiles" "$work/expected-conf" "$work/deb-conf"
ok ".deb holds the expected $(wc -l <"$work/deb-files") files, conffiles /etc/n2n/*.conf"

rpm -qlp "$rpm" 2>/dev/null | sort >"$work/rpm-files"
same_list ".rpm contents (rpm -qlp)" "$work/expected" "$work/rpm-files"
rpm -qcp "$rpm" 2>/dev/null | sort >"$work/rpm-conf"
same_list ".rpm config files (rpm -qcp)" "$work/expected-conf" "$work/rpm-conf"
rpm -qp --scripts "$rpm" 2>/dev/null | grep -q 'useradd --system' ||
    fail ".rpm has no %post creating the user n2n"
ok ".rpm holds the same files (rpm -qlp), config files /etc/n2n/*.conf, %post/%preun/%postun"

# --- install, use, verify, remove ------------------------------------------------
if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q 'install\|config-files'; then
    fail "$PKG is already installed: remove it first (dpkg --purge $PKG)"
fi
# File-system listing without the places that change under a running system
# (other builds and tests on this machine, logs, caches, dpkg's own database).
snapshot() {
    find / /etc /usr /var -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp \
        -o -path /var/tmp -o -path /var/log -o -path /var/cache -o -path /var/lib/dpkg \
        -o -path /var/lib/apt -o -path /root -o -path /home -o -path /work -o -path "$root" \
        -o -path "$target" \) -prune -o -print 2>/dev/null |
        grep -v -E '^/etc/(passwd|group|shadow|gshadow|subuid|subgid)-?$' | sort -u
}
snapshot >"$work/before"

dpkg_locked -i "$deb" >/dev/null || fail "dpkg -i $deb"
ok "dpkg -i installed $PKG"
dpkg -L "$PKG" | sort >"$work/installed"
while read -r f; do
    [ -e "$f" ] || fail "$f is listed by the package but missing after dpkg -i"
done <"$work/expected-deb"

/usr/sbin/edge --version >"$work/v" || fail "/usr/sbin/edge --version"
grep -q '^edge ' "$work/v" || fail "edge --version printed: $(cat "$work/v")"
ok "$(cat "$work/v")"
/usr/sbin/supernode --version >"$work/v" || fail "/usr/sbin/supernode --version"
grep -q '^supernode ' "$work/v" || fail "supernode --version printed: $(cat "$work/v")"
ok "$(cat "$work/v")"
/usr/bin/n2n-decode --help >/dev/null || fail "/usr/bin/n2n-decode --help"
ok "/usr/bin/n2n-decode --help"
[ "$(/usr/bin/n2n-keygen logan 007)" = "* logan nHWum+r42k1qDXdIeH-WFKeylK5UyLStRzxofRNAgpG" ] ||
    fail "/usr/bin/n2n-keygen logan 007 printed: $(/usr/bin/n2n-keygen logan 007)"
ok "/usr/bin/n2n-keygen logan 007 (the spec's example)"
/usr/bin/n2n-site --help | grep -q "n2n-site plan" || fail "/usr/bin/n2n-site --help"
ok "/usr/bin/n2n-site --help"
/usr/sbin/edge /etc/n2n/edge.conf --dry-run >/dev/null ||
    fail "edge rejects the packaged /etc/n2n/edge.conf"
ok "edge --dry-run accepts /etc/n2n/edge.conf"
zcat /usr/share/man/man8/edge.8.gz | grep -q '^\.TH EDGE 8' || fail "edge.8.gz"
zcat /usr/share/man/man1/supernode.1.gz | grep -q '^\.TH SUPERNODE 1' || fail "supernode.1.gz"

getent passwd n2n >/dev/null || fail "no system user n2n after dpkg -i"
perm=$(stat -c '%U:%G %a' /etc/n2n/edge.conf)
[ "$perm" = "root:n2n 640" ] || fail "/etc/n2n/edge.conf is $perm, expected root:n2n 640"
ok "user n2n exists, /etc/n2n/edge.conf is $perm"

units=/usr/lib/systemd/system
mkdir "$work/units"
ln -s "$units/edge@.service" "$work/units/edge@rocks.service"
for u in "$units/edge.service" "$work/units/edge@rocks.service" "$units/supernode.service"; do
    name=${u##*/}
    if ! systemd-analyze verify "$u" >"$work/verify" 2>&1; then
        cat "$work/verify" >&2
        fail "systemd-analyze verify $name"
    fi
    if grep -F -e "$name" -e "$(readlink -f "$u" | sed 's|.*/||')" "$work/verify" >&2; then
        fail "systemd-analyze verify warns about $name"
    fi
done
ok "systemd-analyze verify: edge.service, edge@rocks.service, supernode.service"

# Enable (offline: systemd need not run) so that removal must clean the links.
# The .wants folders systemctl creates for this are the test's, not the package's.
wants_before=$(ls -d /etc/systemd/system/*.wants 2>/dev/null || true)
systemctl enable edge.service edge@rocks.service supernode.service >/dev/null 2>&1 ||
    fail "systemctl enable"
ls /etc/systemd/system/multi-user.target.wants/edge@rocks.service >/dev/null ||
    fail "systemctl enable made no link"
ok "units enabled"

dpkg_locked -r "$PKG" >/dev/null || fail "dpkg -r $PKG"
for f in /usr/sbin/edge /usr/sbin/supernode /usr/bin/n2n-decode /usr/bin/n2n-keygen /usr/bin/n2n-site "$units/edge.service"; do
    [ ! -e "$f" ] || fail "$f is still there after dpkg -r"
done
if ls /etc/systemd/system/*.wants/edge* /etc/systemd/system/*.wants/supernode* 2>/dev/null; then
    fail "enable links left after dpkg -r"
fi
for f in /etc/n2n/edge.conf /etc/n2n/supernode.conf; do
    [ -f "$f" ] || fail "dpkg -r removed the configuration file $f"
done
ok "dpkg -r: binaries, units and enable links gone, /etc/n2n/*.conf kept"

dpkg_locked --purge "$PKG" >/dev/null || fail "dpkg --purge $PKG"
for d in /etc/systemd/system/*.wants; do
    case " $wants_before " in *" $d "*) ;; *) rmdir "$d" 2>/dev/null || true ;; esac
done
snapshot >"$work/after"
same_list "the file system after dpkg --purge" "$work/before" "$work/after"
ok "dpkg --purge: no file left behind ($(wc -l <"$work/before") paths compared)"
echo "check-packages: PASSED"
