#!/bin/sh
# The root file systems the package tests boot with systemd-nspawn (test/packaging/machine.ts), cached outside the
# checkout because CI runs on this same machine: /var/cache/glow-test/ (GLOW_TEST_CACHE). Prints the path of what
# was asked for, building it first when it is missing:
#
#   sh test/packaging/roots.sh trixie     Debian 13 minbase + systemd, dbus, git, and Debian's nodejs 20.19
#   sh test/packaging/roots.sh bookworm   Debian 12 minbase + systemd, dbus, git, python3-apt and ansible-core
#                                          (for the role; python3-cffi-backend by name: debootstrap does not
#                                          resolve the virtual package python3-cryptography needs); no Node.js:
#                                          Debian 12's is 18
#   sh test/packaging/roots.sh nodejs     a nodejs .deb for Debian 12 roots: this machine's /usr/bin/node (>= 20.19)
#
# A root's name carries the hash of this file, so a changed recipe builds a new root (the old ones are removed).
# Roots are built in a temporary directory and renamed into place when complete; one build at a time (flock).
# Each debootstrap is bounded (15 min; ~1-2.5 min cold, its downloads cached in debs-<suite>/ for the next time).
# The roots have no apt sources (the machines have no network): a test adds what it serves.
set -eu
what=${1:?usage: roots.sh trixie|bookworm|nodejs}
cache=${GLOW_TEST_CACHE:-/var/cache/glow-test}
here=$(cd "$(dirname "$0")" && pwd)
recipe=$(sha256sum "$here/roots.sh" | cut -c1-12)
mkdir -p "$cache"
exec 9>"$cache/lock"
flock -w 1800 9

# The Debian mirror of this machine's apt sources (GLOW_TEST_MIRROR to choose another).
mirror=${GLOW_TEST_MIRROR:-}
if [ -z "$mirror" ]; then
    mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)\/*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
fi
if [ -z "$mirror" ]; then
    mirror=$(awk '$1 == "deb" && $2 ~ /\/debian\/?$/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
fi
if [ -z "$mirror" ]; then
    echo "test/packaging/roots.sh: no Debian mirror in this machine's apt sources; set GLOW_TEST_MIRROR" >&2
    exit 1
fi

root_of() { # suite packages
    suite=$1
    dir="$cache/root-$suite-$recipe"
    if [ -f "$dir/.complete" ]; then echo "$dir"; return; fi
    for old in "$cache"/root-"$suite"-*; do
        [ -d "$old" ] && [ "$old" != "$dir" ] && rm -rf "$old"
    done
    tmp="$cache/.tmp-root-$suite-$$"
    rm -rf "$tmp"
    mkdir -p "$cache/debs-$suite"
    echo "test/packaging/roots.sh: debootstrap $suite into $dir (once; cached)" >&2
    if ! timeout 900 debootstrap --variant=minbase --cache-dir="$cache/debs-$suite" --include="$2" "$suite" "$tmp" "$mirror" \
        >"$cache/debootstrap-$suite.log" 2>&1; then
        cp "$tmp/debootstrap/debootstrap.log" "$cache/debootstrap-$suite.inner.log" 2>/dev/null || true
        tail -n 20 "$cache/debootstrap-$suite.log" >&2
        rm -rf "$tmp"
        echo "test/packaging/roots.sh: debootstrap $suite failed (log: $cache/debootstrap-$suite.log)" >&2
        exit 1
    fi
    # The machine's name is its host name (systemd-nspawn --hostname): no /etc/hostname of the host that built it.
    rm -f "$tmp/etc/hostname"
    # No network in the machines: no sources that an apt-get update would fail on.
    rm -f "$tmp/etc/apt/sources.list" "$tmp"/etc/apt/sources.list.d/*
    chroot "$tmp" apt-get clean
    rm -rf "$tmp"/var/lib/apt/lists/*_Packages "$tmp"/var/lib/apt/lists/*Release* "$tmp"/var/log/*.log
    touch "$tmp/.complete"
    mv "$tmp" "$dir"
    echo "$dir"
}

case $what in
    trixie)
        root_of trixie systemd-sysv,dbus,nodejs,git,ca-certificates
        ;;
    bookworm)
        root_of bookworm systemd-sysv,dbus,git,ca-certificates,python3,python3-apt,python3-cffi-backend,ansible-core
        ;;
    nodejs)
        version=$(dpkg-query -W -f='${Version}' nodejs 2>/dev/null || true)
        major=$(node -p 'process.versions.node.split(".").slice(0, 2).join(".")')
        case $major in
            20.19|20.2*|2[1-9].*) ;;
            *) echo "test/packaging/roots.sh: this machine's Node.js is $major, not >= 20.19" >&2; exit 1 ;;
        esac
        [ -n "$version" ] || version=$(node -p 'process.versions.node')-1
        deb="$cache/nodejs_${version}+glowtest_amd64.deb"
        if [ ! -f "$deb" ]; then
            rm -f "$cache"/nodejs_*+glowtest_amd64.deb
            tmp="$cache/.tmp-nodejs-$$"
            rm -rf "$tmp"
            mkdir -p "$tmp/DEBIAN" "$tmp/usr/bin" "$tmp/usr/share/doc/nodejs"
            cp "$(command -v node)" "$tmp/usr/bin/node"
            printf 'This machine'"'"'s Node.js binary, packaged for the tests of test/packaging only.\n' > "$tmp/usr/share/doc/nodejs/README"
            cat > "$tmp/DEBIAN/control" <<EOF
Package: nodejs
Version: ${version}+glowtest
Architecture: amd64
Maintainer: Glow tests <glow@example.org>
Depends: libc6 (>= 2.28), libgcc-s1, libstdc++6 (>= 5.2)
Section: web
Priority: optional
Description: Node.js for Glow's package tests (this machine's /usr/bin/node)
 Only /usr/bin/node, packaged by test/packaging/roots.sh for Debian 12 machines.
EOF
            dpkg-deb --root-owner-group -Zgzip -z1 --build "$tmp" "$deb.tmp" >/dev/null
            mv "$deb.tmp" "$deb"
            rm -rf "$tmp"
        fi
        echo "$deb"
        ;;
    *)
        echo "test/packaging/roots.sh: unknown root $what (trixie, bookworm, nodejs)" >&2
        exit 2
        ;;
esac
