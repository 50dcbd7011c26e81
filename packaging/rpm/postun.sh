#!/bin/sh
# %postun of the aws-kinesis-agent rpm ($1: 0 = erase, 1 or more = upgrade).
# rpm has no "purge": an erase keeps the user aws-kinesis-agent-user, the checkpoints in
# /var/lib/aws-kinesis-agent and the logs (an rpm -e then rpm -i must not resend or skip data),
# and a changed /etc/aws-kinesis/agent.json is saved as agent.json.rpmsave by rpm.
# To remove everything after an erase:
#   userdel aws-kinesis-agent-user; rm -rf /var/lib/aws-kinesis-agent /var/log/aws-kinesis-agent
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || :
fi
exit 0
