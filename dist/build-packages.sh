#!/bin/sh
# Builds the n2n-rs packages: target/packages/n2n-rs_<version>-1_<arch>.deb
# (cargo-deb) and target/packages/n2n-rs-<version>-1.<arch>.rpm
# (cargo-generate-rpm), both from one release build.
#
#   dist/build-packages.sh              build the release binaries, then package
#   dist/build-packages.sh --no-build   package the binaries already in target/release
#
# Needs: cargo-deb and cargo-generate-rpm (cargo install --locked cargo-deb@3.8.0
# cargo-generate-rpm@0.21.1), strip (binutils) and gzip. CARGO_TARGET_DIR is honoured.
#
# Both packages hold the same files (dist/check-packages.sh compares them):
#   /usr/sbin/edge, /usr/sbin/supernode, /usr/bin/n2n-decode, /usr/bin/n2n-keygen, /usr/bin/n2n-site
#   /usr/lib/systemd/system/{edge,edge@,supernode}.service
#   /etc/n2n/edge.conf, /etc/n2n/supernode.conf        (configuration files)
#   /usr/share/man/man8/edge.8.gz, /usr/share/man/man1/supernode.1.gz,
#   /usr/share/man/man1/n2n-site.1.gz
#   /usr/share/doc/n2n-rs/{README.md,LICENSE-MIT,LICENSE-APACHE}
# and the .deb also Debian's /usr/share/doc/n2n-rs/copyright.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
case "$target" in /*) ;; *) target="$root/$target" ;; esac
out="$target/packages"

if [ "${1:-}" != --no-build ]; then
    # The same command line as the tests' release build (n2n_tests::perf), so
    # that the binaries of a test run are reused, not built again.
    cargo build --release --locked --workspace --bin edge --bin supernode --bin n2n-decode --bin n2n-keygen --bin n2n-site
fi
for b in edge supernode n2n-decode n2n-keygen n2n-site; do
    [ -x "$target/release/$b" ] || {
        echo "build-packages.sh: no $target/release/$b (run without --no-build)" >&2
        exit 1
    }
done

# The staging folder the package metadata (dist/Cargo.toml) points at.
stage="$target/release/n2n-dist"
rm -rf "$stage"
mkdir -p "$stage" "$out"
for b in edge supernode n2n-decode n2n-keygen n2n-site; do
    strip -o "$stage/$b" "$target/release/$b"
done
# The units run the packaged binaries from /usr/sbin (the checked-in units
# point at /usr/local/sbin, where the install.sh scripts put them).
for u in crates/edge/dist/edge.service crates/edge/dist/edge@.service \
    crates/supernode/dist/supernode.service; do
    sed -e 's|/usr/local/sbin/|/usr/sbin/|g' \
        -e 's|^# Install with crates/[a-z]*/dist/install.sh, then:|# Installed by the n2n-rs package; then:|' \
        -e 's|install.sh creates the system user|the package creates the system user|' \
        "$u" >"$stage/${u##*/}"
done
gzip -9n <dist/man/edge.8 >"$stage/edge.8.gz"
gzip -9n <dist/man/supernode.1 >"$stage/supernode.1.gz"
gzip -9n <dist/man/n2n-site.1 >"$stage/n2n-site.1.gz"

rm -f "$out"/n2n-rs*.deb "$out"/n2n-rs*.rpm
cargo deb -p n2n-rs --no-build --no-strip --output "$out/"
cargo generate-rpm -p dist --target-dir "$target" --output "$out/"
ls -l "$out"/n2n-rs*
