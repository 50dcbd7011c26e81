#!/bin/sh
# %preun of the aws-kinesis-agent rpm ($1: 0 = erase, 1 or more = upgrade: nothing to do, the
# new package's %post has restarted the service).
UNIT=aws-kinesis-agent.service

if [ "$1" -eq 0 ]; then
    if [ -d /run/systemd/system ]; then
        systemctl stop "$UNIT" || :
    fi
    if command -v systemctl >/dev/null 2>&1; then
        systemctl --no-reload disable "$UNIT" >/dev/null 2>&1 || :
    fi
fi
exit 0
