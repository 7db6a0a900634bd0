#!/bin/sh
# Builds the tree the package ships under /usr/lib/glow, in debian/tree/usr/lib/glow of a clean export (run by
# packaging/debian/rules, from the export's root; packaging/build-deb.sh makes the export):
#   dist/src/       Glow's code, compiled without source maps (packaging/tsconfig.json)
#   node_modules/   the production dependencies of package-lock.json, without optional ones (dbus-next's
#                   usocket would bring a native module and node-gyp) and without install scripts, pruned of
#                   what is not run (types, maps, docs, tests); every licence file is kept
#   build/Release/glow_relay.node
#                   the proxy's native relay (native/relay.c, an N-API addon), built by the install script of
#                   package.json (native/build.mjs: node-gyp against this Node.js's headers) with GLOW_NATIVE=require:
#                   no compiler, no package (a package without its native data path is not what Glow ships);
#                   src/proxy/native-relay.ts loads it from there, three folders above dist/src/proxy
#   package.json    name, version (the package's: `glow --version` reads it), type and dependencies
# and the man pages glow(1) and glowd(8) in debian/man, from the built CLI's --help (packaging/manpages.mjs).
# Usage: sh packaging/build-tree.sh VERSION
set -eu
version=$1
dest=debian/tree/usr/lib/glow
rm -rf debian/tree debian/prod debian/man
npm_flags="--no-audit --no-fund --prefer-offline --loglevel=error"

# The build's own tree (TypeScript) and the native relay (the root's install script; no optional module, so
# dbus-next's usocket is not built), then the compile. CFLAGS, CPPFLAGS and LDFLAGS (debian/rules: dpkg-buildflags)
# reach node-gyp's Makefile through the environment.
GLOW_NATIVE=require npm ci $npm_flags --omit=optional
node_modules/.bin/tsc -p packaging/tsconfig.json
addon=build/Release/glow_relay.node
if [ ! -f "$addon" ]; then
  echo "packaging/build-tree.sh: npm ci did not build $addon (the proxy's native relay)" >&2
  exit 1
fi
mkdir -p "$dest/build/Release"
install -m 0644 "$addon" "$dest/build/Release/glow_relay.node"

# The production dependencies, in a directory of their own.
mkdir -p debian/prod
cp package.json package-lock.json debian/prod/
(cd debian/prod && npm ci $npm_flags --ignore-scripts --omit=dev --omit=optional)
mv debian/prod/node_modules "$dest/node_modules"
rm -rf debian/prod "$dest/node_modules/.package-lock.json" "$dest/node_modules/.bin"
# Each module's own tests, docs, examples and benchmarks: top-level directories only (yaml's dist/doc/ is code).
find "$dest/node_modules" -mindepth 2 -maxdepth 3 -type d -regextype posix-extended \
    -regex '.*/node_modules/(@[^/]+/)?[^/@][^/]*/(test|tests|__tests__|docs?|examples?|benchmarks?|bench|\.github|\.husky|coverage|\.nyc_output)' \
    -prune -exec rm -rf {} +
find "$dest/node_modules" -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' \
    -o -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.tsbuildinfo' -o -name 'tsconfig*.json' \
    -o -name '*.html' -o -name '*.htm' -o -name '*.markdown' -o -name '.*' -o -name 'Makefile' \
    -o -name '*.yml' -o -name '*.yaml' -o -name '*.test.js' \
    -o \( -iname '*.md' ! -iname 'licen[cs]e*' \) -o -iname 'changelog*' -o -iname 'history*' \) -delete
find "$dest/node_modules" -depth -type d -empty -delete

# No native code but the relay: the production modules bring none (no optional module, no install script).
native=$(find "$dest" -type f \( -name '*.node' -o -name 'binding.gyp' -o -name '*.so' -o -name '*.so.*' \) \
  ! -path "$dest/build/Release/glow_relay.node" -print)
if [ -n "$native" ]; then
  echo "packaging/build-tree.sh: native code in the tree other than the relay: $native" >&2
  exit 1
fi

# package.json: what the code reads at run time (its version, and "type": "module" for dist/).
node -e '
  const fs = require("fs");
  const p = JSON.parse(fs.readFileSync("package.json", "utf8"));
  const out = { name: p.name, version: process.argv[1], description: p.description, license: p.license, type: p.type,
    engines: p.engines, dependencies: p.dependencies };
  fs.writeFileSync(process.argv[2], JSON.stringify(out, null, 2) + "\n");
' "$version" "$dest/package.json"

# The man pages, from the built CLI.
node packaging/manpages.mjs "$dest" debian/man "$version"
