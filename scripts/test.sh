#!/bin/sh
# Glow's test command: installs everything the tests need on a Debian 12 machine, builds, and runs every test.
# Run as root (the integration tests boot real systemd nodes in namespaces): sudo scripts/test.sh
# The Debian packages come from packaging/test-packages.txt, the npm packages from package-lock.json.
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "scripts/test.sh: run as root (sudo scripts/test.sh): the tests boot systemd in namespaces" >&2
  exit 2
fi
if ! command -v node >/dev/null 2>&1 || ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)'; then
  echo "scripts/test.sh: Glow needs Node.js >= 20.19 (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 2
fi

# Debian packages: install only what is missing, so a second run is fast and offline.
missing=""
for pkg in $(grep -v '^\s*#' packaging/test-packages.txt); do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  echo "scripts/test.sh: installing Debian packages:$missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# GLOW_NATIVE=require: a native relay that does not build fails the run (instead of a proxy on the portable path).
GLOW_NATIVE=require npm ci --no-audit --no-fund --loglevel=error
rm -rf dist   # a file moved in src/ must not leave its old build behind to be tested
npm run build --silent
# Every test on the native data path: a missing addon fails the proxy's start loudly instead of falling back.
GLOW_PROXY_DATA_PATH=native npm test
# The native relay under ASan and UBSan, then the proxy tests once more on the portable path.
sh scripts/test-native.sh
