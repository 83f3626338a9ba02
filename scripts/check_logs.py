#!/usr/bin/env python3
"""Fails when any log line the test suite wrote carries a secret.

Every integration-test binary writes all its logs (the gateway at trace,
everything else at debug, as JSON lines) to target/test-logs/. This looks
there for the credentials the tests configure, bearer and basic header
values, signNow-style tokens, Base64 PDFs, full Leegality sign URLs and
unmasked email addresses.
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
LOGS = ROOT / "target" / "test-logs"

# The simulator's credentials (src/simulator/mod.rs) and the wrong ones tests use.
LITERALS = [
    "sim-leegality-auth-token",
    "c2ltLWNsaWVudDpzaW0tc2VjcmV0",
    "sim-signnow-password",
    "private_sandbox_sim_key",
    "revoked-token",
    "private_wrong",
    "wrong-password",
    "caller-token-",  # prefix of the caller tokens the auth tests use
    "JVBERi0",  # Base64 of "%PDF-": a document body
]
PATTERNS = {
    "bearer header": re.compile(r"Bearer [A-Za-z0-9._~+/=-]{8,}"),
    "basic header": re.compile(r"Basic [A-Za-z0-9+/=]{8,}"),
    "64-hex token": re.compile(r"\b[0-9a-f]{64}\b"),
    "sign URL": re.compile(r"/sign/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-"),
    "unmasked email": re.compile(r"\b[A-Za-z0-9._%+-]{2,}@example\.(com|org)\b"),
}


def main():
    files = sorted(LOGS.glob("*.log"))
    if not files:
        print("logs: FAIL: no test logs found; the check would prove nothing")
        return 1
    lines = 0
    problems = []
    for file in files:
        with file.open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                lines += 1
                for literal in LITERALS:
                    if literal in line:
                        problems.append(f"{file.name}:{number}: {literal!r}")
                for name, pattern in PATTERNS.items():
                    if pattern.search(line):
                        problems.append(f"{file.name}:{number}: {name}")
    if problems:
        print(f"logs: FAIL: {len(problems)} secret(s) in the test logs:")
        for problem in problems[:50]:
            print("  " + problem)
        return 1
    audit = sum(
        1 for file in files for line in file.open(errors="replace") if '"target":"audit"' in line
    )
    print(f"logs: {lines} lines in {len(files)} files, {audit} audit lines, no secrets")
    return 0 if audit else 1


if __name__ == "__main__":
    sys.exit(main())
