#!/bin/sh
# %posttrans of the aws-kinesis-agent rpm: once the whole transaction is done (an upgraded Java
# agent rpm has been erased, its scriptlets have run), remove what is left of the Java agent's
# SysV service: its init script (when `setup` installed it, or rpm kept it) and its runlevel links.
for init in /etc/rc.d/init.d/aws-kinesis-agent /etc/init.d/aws-kinesis-agent; do
    if [ -e "$init" ]; then
        rm -f "$init"
        echo "aws-kinesis-agent: removed the Java agent's init script $init (the systemd unit aws-kinesis-agent.service replaces it)"
    fi
done
rm -f /etc/rc.d/rc[0-6].d/[SK][0-9][0-9]aws-kinesis-agent /etc/rc[0-6].d/[SK][0-9][0-9]aws-kinesis-agent
exit 0
