#!/usr/bin/env python3
"""Lint IAM policies with parliament's library (tests/deploy.rs).

Run it with the emulator venv:  .venv-emu/bin/python tests/emu/lint_policies.py < POLICIES

Standard input: one JSON object, {"name": policy document, ...}. Standard output: one JSON line
per finding, {"policy", "issue", "severity", "detail"}, every severity (INFO and up); nothing
when there is none. Exit 0 either way; 1 when a policy cannot be analysed.

The library, not the `parliament` command: the command (1.6.4) also appends its arguments and
the policies to /tmp/parliament.log, which a test must not do.
"""

import json
import sys

import parliament


def main():
    policies = json.load(sys.stdin)
    for name, document in policies.items():
        policy = parliament.analyze_policy_string(json.dumps(document), name)
        for finding in policy.findings:
            finding = parliament.enhance_finding(finding)
            print(json.dumps({"policy": name, "issue": finding.issue,
                              "severity": finding.severity, "detail": finding.detail},
                             default=str))


if __name__ == "__main__":
    main()
