#!/bin/sh
# %pre of the aws-kinesis-agent rpm ($1: 1 = install, 2 or more = upgrade).
# Creates the system user and group (%post gives them their directories), and, when the
# Java agent is here (its rpm of the same name, or its `setup` script), takes its cron babysitter
# away so it cannot restart the Java agent, then stops the Java agent with its own init script.
AGENT_USER=aws-kinesis-agent-user

getent group "$AGENT_USER" >/dev/null || groupadd -r "$AGENT_USER" || exit 1
if ! getent passwd "$AGENT_USER" >/dev/null; then
    useradd -r -g "$AGENT_USER" -d /var/lib/aws-kinesis-agent -M -s /sbin/nologin \
        -c "Amazon Kinesis Agent" "$AGENT_USER" || exit 1
    echo "aws-kinesis-agent: created the system user $AGENT_USER"
fi

if [ -e /etc/cron.d/aws-kinesis-agent ]; then
    rm -f /etc/cron.d/aws-kinesis-agent
    echo "aws-kinesis-agent: removed the Java agent's cron babysitter /etc/cron.d/aws-kinesis-agent (systemd restarts the agent now)"
fi
for init in /etc/rc.d/init.d/aws-kinesis-agent /etc/init.d/aws-kinesis-agent; do
    if [ -x "$init" ]; then
        echo "aws-kinesis-agent: stopping the Java agent: $init stop"
        "$init" stop || echo "aws-kinesis-agent: the Java agent's init script could not stop it; continuing" >&2
        break
    fi
done
exit 0
