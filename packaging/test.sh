#!/usr/bin/env bash
# Runs every test: installs what the tests need, builds, runs all test projects of SlidePlugin.sln,
# and prints one closing line "tests: N passed, N failed, N skipped". Under CI a skipped test fails
# the run: a test that did not run has not passed.
set -euo pipefail
cd "$(dirname "$0")/.."

packaging/install-deps.sh --test

export SLIDEPLUGIN_TESTDATA="${SLIDEPLUGIN_TESTDATA:-$(cd .. && pwd)/shared/testdata}"
if [ ! -d "$SLIDEPLUGIN_TESTDATA" ]; then
    echo "test: test data folder '$SLIDEPLUGIN_TESTDATA' is missing (set SLIDEPLUGIN_TESTDATA or put shared/ beside the repository)" >&2
    exit 1
fi

# Node's gRPC client for the interop tests (test-only; exact versions from the lock file).
npm ci --prefix tests/interop --no-audit --no-fund --loglevel=error
# The Node client example, which a test runs as a user would.
npm ci --prefix clients/node --no-audit --no-fund --loglevel=error

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# --blame-crash keeps a minidump and the test that was running should a native library crash the test host.
dotnet test SlidePlugin.sln -c Release --blame-crash --blame-crash-dump-type mini 2>&1 | tee "$log" || status=$?

# dotnet test prints one summary per test assembly: "Passed!  - Failed: 0, Passed: 19, Skipped: 0, ...".
read -r passed failed skipped < <(awk -F'[:,]' '/(Passed|Failed)!  - Failed:/ {
    for (i = 1; i <= NF; i++) {
        if ($i ~ /Failed$/) f += $(i+1); if ($i ~ /Passed$/) p += $(i+1); if ($i ~ /Skipped$/) s += $(i+1)
    } } END { print p+0, f+0, s+0 }' "$log")
echo "tests: ${passed} passed, ${failed} failed, ${skipped} skipped"

if [ "$status" -ne 0 ]; then exit "$status"; fi
if [ "$passed" -eq 0 ]; then echo "test: no test ran" >&2; exit 1; fi
if [ "${CI:-}" = true ] && [ "$skipped" -ne 0 ]; then echo "test: $skipped test(s) skipped under CI" >&2; exit 1; fi
