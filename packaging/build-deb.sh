#!/bin/sh
# npm run package [-- --version V] [--out DIR]: builds glow_<version>_<arch>.deb (arch: this host's, amd64 here)
# from a clean export of the repository (the tracked files as they are in the work tree, uncommitted changes
# included; nothing untracked, no node_modules, no dist, no build) with debhelper, and prints its path as the last
# line. The package is architecture-specific: it carries the proxy's native relay (native/relay.c), compiled here.
#   --version V   the package's version (default: package.json's, with "-" as "~")
#   --out DIR     where the .deb goes, with the relay's debug symbols (glow-dbgsym_<version>_<arch>.deb) and the build
#                 log (default dist/package)
# Needs the Debian packages debhelper, dpkg-dev, build-essential (the C compiler and make), python3 (node-gyp)
# and nodejs >= 20.19 with its headers (packaging/test-packages.txt), and npm's registry or its cache for `npm ci`.
# Without a compiler the build fails: a package without its native data path is not what Glow ships.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)

version=""
out="dist/package"
while [ $# -gt 0 ]; do
    case $1 in
        --version) version=${2:?--version needs a value}; shift 2 ;;
        --out) out=${2:?--out needs a value}; shift 2 ;;
        *) echo "packaging/build-deb.sh: unknown argument $1 (takes --version V, --out DIR)" >&2; exit 2 ;;
    esac
done
[ -n "$version" ] || version=$(node -p 'require("./package.json").version.replace(/-/g, "~")')
if ! printf '%s\n' "$version" | grep -Eq '^[0-9][A-Za-z0-9.+~]*$'; then
    echo "packaging/build-deb.sh: $version is not a version of a native Debian package (digits first; letters, digits, . + ~)" >&2
    exit 2
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/glow-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
src="$work/glow-$version"
mkdir "$src"

# The export: a commit object of the work tree's tracked files (HEAD itself when nothing changed), archived. The
# build never sees the work tree, so debhelper's clean (which deletes files ending in ~) cannot touch it.
tree=$(git -c user.name=glow -c user.email=glow@localhost stash create 2>/dev/null || true)
git archive --format=tar "${tree:-HEAD}" | tar -x -C "$src"
cp -R "$src/packaging/debian" "$src/debian"
date=$(git log -1 --format=%cD HEAD)
cat > "$src/debian/changelog" <<CHANGELOG
glow ($version) unstable; urgency=medium

  * Glow $version, built from the repository; CHANGELOG.md says what changed.

 -- Glow developers <glow@example.org>  $date
CHANGELOG

arch=$(dpkg-architecture -qDEB_HOST_ARCH)
log="$out/glow_${version}_${arch}.build.log"
echo "packaging/build-deb.sh: building glow $version for $arch in $src (log: $log)" >&2
# The build dependencies of debian/control and build-essential (the addon is compiled), checked first so that a
# host without them is told which are missing.
if ! (cd "$src" && dpkg-checkbuilddeps) >"$log" 2>&1; then
    cat "$log" >&2
    echo "packaging/build-deb.sh: this host lacks build dependencies (the native relay needs build-essential and python3)" >&2
    exit 1
fi
if ! (cd "$src" && dpkg-buildpackage -b -d -us -uc) >>"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "packaging/build-deb.sh: the build failed; the whole log is $log" >&2
    exit 1
fi
deb="$out/glow_${version}_${arch}.deb"
mv "$work/glow_${version}_${arch}.deb" "$deb"
# The relay's debug symbols (dh_strip's glow-dbgsym; .ddeb where debhelper names it so), beside the package: for a
# core dump of the proxy.
for ddeb in "$work"/glow-dbgsym_"${version}"_"${arch}".deb "$work"/glow-dbgsym_"${version}"_"${arch}".ddeb; do
    [ -f "$ddeb" ] && mv "$ddeb" "$out/"
done
echo "$deb"
