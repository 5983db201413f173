# n2n-rs %preun: on erase ($1 = 0), stop and disable the units (also every
# enabled edge@NAME instance) before their files go away.
if [ "$1" = 0 ] && command -v systemctl >/dev/null 2>&1; then
    units="edge.service supernode.service"
    for link in /etc/systemd/system/*.wants/edge@*.service; do
        [ -e "$link" ] || [ -L "$link" ] || continue
        units="$units ${link##*/}"
    done
    if [ -d /run/systemd/system ]; then
        systemctl stop $units >/dev/null 2>&1 || true
    fi
    systemctl disable $units >/dev/null 2>&1 || true
fi
exit 0
