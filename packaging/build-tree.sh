#!/bin/sh
# Builds the tree the package ships under /usr/lib/glow, in debian/tree/usr/lib/glow of a clean export (run by
# packaging/debian/rules, from the export's root; packaging/build-deb.sh makes the export):
#   dist/src/       Glow's code, compiled without source maps (packaging/tsconfig.json)
#   node_modules/   the production dependencies of package-lock.json, without optional ones (dbus-next's
#                   usocket would bring a native module and node-gyp) and without install scripts, pruned of
#                   what is not run (types, maps, docs, tests); every licence file is kept
#   package.json    name, version (the package's: `glow --version` reads it), type and dependencies
# and the man pages glow(1) and glowd(8) in debian/man, from the built CLI's --help (packaging/manpages.mjs).
# Usage: sh packaging/build-tree.sh VERSION
set -eu
version=$1
dest=debian/tree/usr/lib/glow
rm -rf debian/tree debian/prod debian/man
npm_flags="--no-audit --no-fund --prefer-offline --loglevel=error"

# The build's own tree (TypeScript), then the compile.
npm ci $npm_flags --ignore-scripts
node_modules/.bin/tsc -p packaging/tsconfig.json

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

# No native code: the package is Architecture: all.
native=$(find "$dest" -type f \( -name '*.node' -o -name 'binding.gyp' -o -name '*.so' \) -print)
if [ -n "$native" ]; then
  echo "packaging/build-tree.sh: native code in the tree (the package is Architecture: all): $native" >&2
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
