#!/bin/sh
# The proxy's native relay (native/relay.c) under AddressSanitizer and UndefinedBehaviorSanitizer, then the portable
# data path once more: scripts/test.sh runs it after `npm test` (which ran everything on the native path with the
# normal build). Run after `npm run build`; needs gcc (package g++ brings it, and its libasan8 and libubsan1).
#
# 1. Builds native/relay.c with -fsanitize=address,undefined into build/asan/glow_relay.node (not the normal
#    build/Release one), straight with gcc against Node's headers.
# 2. Runs the proxy's test files (below) with GLOW_PROXY_DATA_PATH=native GLOW_PROXY_ADDON=build/asan/glow_relay.node, the
#    ASan runtime preloaded (node itself is not instrumented, and ASan must come first in the library list). Any
#    sanitizer report aborts the process, so the test fails. Leak detection is off: Node does not free its own heap
#    at exit (V8, OpenSSL, ICU: thousands of reports), and a suppression cannot keep relay.c's leaks apart from
#    them (every allocation of relay.c is made under libuv's and V8's frames in the same node binary). relay.c's
#    own bookkeeping is checked by the tests instead: the addon's open() must be 0 once the connections closed.
# 3. Runs them again with GLOW_PROXY_DATA_PATH=portable (the reference path stays tested), without relay-compare and
#    http-compare (they run both paths side by side whatever the environment says) and relay-native (the native path
#    only).
# Both runs take every proxy test file but those whose proxies run under systemd in booted nodes (exposure-nodes,
# systemd): those proxies get the unit's environment, not this one, so neither the sanitizer build nor the
# portable path would reach them (`npm test` ran them, on the native path).
set -eu
cd "$(dirname "$0")/.."

cc=${CC:-gcc}
inc=""
for d in "$(dirname "$(dirname "$(command -v node)")")/include/node" /usr/include/node; do
  [ -f "$d/node_api.h" ] && { inc=$d; break; }
done
if [ -z "$inc" ]; then
  echo "scripts/test-native.sh: Node's headers (node_api.h) are not found next to $(command -v node)" >&2
  exit 2
fi
runtime=$("$cc" -print-file-name=libasan.so)
runtime=$(readlink -f "$runtime")
if [ ! -f "$runtime" ]; then
  echo "scripts/test-native.sh: $cc has no ASan runtime (libasan.so; Debian's libasan8 comes with gcc)" >&2
  exit 2
fi

mkdir -p build/asan
"$cc" -std=gnu11 -Wall -Wextra -Werror -fvisibility=hidden -I"$inc" \
  -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
  -shared -fPIC -o build/asan/glow_relay.node native/relay.c
echo "scripts/test-native.sh: built build/asan/glow_relay.node (ASan + UBSan, runtime $runtime)"

if [ ! -d dist/test/proxy ]; then
  echo "scripts/test-native.sh: no dist/test/proxy: run npm run build first" >&2
  exit 2
fi
proxy_tests=$(find dist/test/proxy -name '*.test.js' | sort | grep -v -e '/exposure-nodes\.test\.js$' -e '/systemd\.test\.js$')

echo "scripts/test-native.sh: the proxy tests on the native path, under ASan and UBSan"
# relay-compare runs half its scripts here (npm test ran them all on the normal build): each takes longer under
# the sanitizers, and 1200 scripts go through every kind of script many times.
env GLOW_PROXY_DATA_PATH=native GLOW_PROXY_ADDON="$PWD/build/asan/glow_relay.node" LD_PRELOAD="$runtime" GLOW_COMPARE_SCRIPTS=1200 \
  ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=0:strict_string_checks=1:check_initialization_order=1 \
  UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1 \
  node --test --test-concurrency=1 --test-timeout=600000 $proxy_tests

echo "scripts/test-native.sh: the proxy tests on the portable path"
env GLOW_PROXY_DATA_PATH=portable \
  node --test --test-concurrency=1 --test-timeout=600000 $(echo "$proxy_tests" | grep -v -e '/relay-compare\.test\.js$' -e '/http-compare\.test\.js$' -e '/relay-native\.test\.js$')
