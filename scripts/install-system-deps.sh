#!/usr/bin/env bash
# Install the Debian packages the grader's sandbox (bubblewrap) and the browser
# test (chromium) need. Guarded: without root or apt-get this only reports,
# so a user's machine without root still works (the tests that need them skip).
set -u
need=()
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system-deps: missing ${need[*]}; not root or no apt-get, skipping." >&2
  echo "  The grader then falls back to rlimits only; the browser test is skipped." >&2
  exit 0
fi
echo "install-system-deps: apt-get install ${need[*]}" >&2
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
