#!/bin/sh
# %post of the aws-kinesis-agent rpm ($1: 1 = install, 2 or more = upgrade).
# Makes the agent's directories (cargo-generate-rpm cannot package empty directories).
# First install, or replacing the Java agent: enable the unit (also offline, so an image built in
# a chroot starts the agent at boot) and start it when systemd runs. Upgrade: restart it if it is
# enabled or running. %posttrans removes the Java agent's leftover init script.
UNIT=aws-kinesis-agent.service
AGENT_USER=aws-kinesis-agent-user

# The agent's state and log directories, 0750 and its user's (also when the Java agent left
# them with other modes), and the flows directory.
for dir in /var/lib/aws-kinesis-agent /var/log/aws-kinesis-agent; do
    mkdir -p "$dir"
    chown "$AGENT_USER:$AGENT_USER" "$dir"
    chmod 0750 "$dir"
done
mkdir -p /etc/aws-kinesis/agent.d

first_install=false
[ "$1" -eq 1 ] && first_install=true
if [ -e /etc/rc.d/init.d/aws-kinesis-agent ] || [ -e /etc/init.d/aws-kinesis-agent ]; then
    first_install=true # replacing the Java agent: it ran as a service, so does this one
fi

if [ "$first_install" = true ] && command -v systemctl >/dev/null 2>&1; then
    systemctl enable "$UNIT" ||
        echo "aws-kinesis-agent: could not enable $UNIT; enable it with: systemctl enable $UNIT" >&2
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || :
    if systemctl is-enabled --quiet "$UNIT" 2>/dev/null; then
        systemctl restart "$UNIT" ||
            echo "aws-kinesis-agent: $UNIT did not start; see: journalctl -u $UNIT, and /var/log/aws-kinesis-agent/aws-kinesis-agent.log" >&2
    else
        systemctl try-restart "$UNIT" || :
    fi
elif [ "$first_install" = true ]; then
    echo "aws-kinesis-agent: systemd is not running here: not started. Run it with: /usr/bin/aws-kinesis-agent"
fi
exit 0
