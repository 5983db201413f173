# n2n-rs %postun: reload systemd after the units are gone (the user n2n is kept).
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
