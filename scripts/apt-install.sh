#!/usr/bin/env bash
# Install Debian packages the test suite needs (real Chromium, Dovecot), once per machine.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "Installing $* needs root: run 'sudo apt-get install -y $*' once, then make test." >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "$@" >/dev/null
echo "installed: $*"
