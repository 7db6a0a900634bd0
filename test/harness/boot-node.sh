#!/bin/bash
# boot-node.sh — PID 1 of a Glow test node until it execs systemd.
#
# Run by systemd-node.ts as
#   setpriv --pdeathsig KILL -- unshare --pid --mount --net --uts --ipc --fork \
#           --kill-child=SIGKILL --propagation private bash boot-node.sh
# i.e. as PID 1 of fresh PID, mount, network, UTS and IPC namespaces. Stage 1 moves itself into the node's
# cgroups and re-execs itself (still PID 1) in a new cgroup namespace rooted there; stage 2 builds the node's
# private view of the machine and then execs /lib/systemd/systemd. Nothing here writes to the host: every mount happens in the
# node's own (rprivate) mount namespace, /etc /var /root are overlays whose upper layers live in the node's state
# directory, and /run /tmp /var/tmp /dev are fresh. See README.md beside this file for the why of each step.
#
# Inputs (environment, all set by systemd-node.ts):
#   GLOW_NODE_NAME        node name (a DNS label), becomes the host name
#   GLOW_NODE_STATE       the node's state directory on the host (absolute, not under /etc or /var)
#   GLOW_NODE_CGROUPS     newline-separated cgroup directories (one per hierarchy) already created for the node
#   GLOW_NODE_MACHINE_ID  32 hex digits
#   GLOW_NODE_BINDS       optional, newline-separated host paths to bind back at the same path
#   GLOW_NODE_PODMAN      "1" to configure podman (containers.conf, a real directory on /var/lib/containers)
#   GLOW_NODE_RO_ROOT     "1" (default) to make the host's root mount read-only inside the node
#   GLOW_NODE_TARGET      the boot target's name (default glow-harness.target)
#   GLOW_NODE_WANTS       optional, space-separated units the boot target also wants (started during boot)
#   unit files in $GLOW_NODE_STATE/units/ are installed into the node's /etc/systemd/system before boot
set -euo pipefail
shopt -s nullglob

name=${GLOW_NODE_NAME:?GLOW_NODE_NAME is not set}
state=${GLOW_NODE_STATE:?GLOW_NODE_STATE is not set}
cgroups=${GLOW_NODE_CGROUPS:?GLOW_NODE_CGROUPS is not set}
machine_id=${GLOW_NODE_MACHINE_ID:?GLOW_NODE_MACHINE_ID is not set}
binds=${GLOW_NODE_BINDS:-}
podman=${GLOW_NODE_PODMAN:-0}
ro_root=${GLOW_NODE_RO_ROOT:-1}
target=${GLOW_NODE_TARGET:-glow-harness.target}
wants=${GLOW_NODE_WANTS:-}

say() { echo "boot-node[$name]: $*" >&2; }
trap 'say "failed at line $LINENO: $BASH_COMMAND"' ERR

# -n: never touch a mount table file (libmount's utab lives in /run/mount, the host's until /run is replaced).
mount() { command mount -n "$@"; }
umount() { command umount -n "$@"; }

[ "$$" = 1 ] || { say "must run as PID 1 of a new PID namespace (is $$)"; exit 1; }

# 1. Join the node's own cgroup in every hierarchy before anything else, so that every process of the node
#    (this script's children included) is inside it; then a cgroup namespace rooted there. Without it the node
#    sees whole hierarchies: systemd copes (it uses the cgroup it starts in as its root), but runc computes the
#    paths of controllers systemd does not manage (cpu, blkio) from the hierarchy's root and creates
#    /machine.slice/libpod-….scope at the root of the host's hierarchies.
if [ "${1:-}" != --stage2 ]; then
  IFS=$'\n'
  for cg in $cgroups; do
    echo 0 > "$cg/cgroup.procs"
  done
  unset IFS
  exec unshare --cgroup -- bash "$0" --stage2
fi

# 2. Private mount tree, fresh /proc for the new PID namespace; sysctls are read-only except the network
#    namespace's own (systemd would otherwise bump fs.nr_open and fs.file-max on the host).
mount --make-rprivate /
mount -t proc -o nosuid,nodev,noexec proc /proc
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro,nosuid,nodev,noexec /proc/sys
mount --bind /proc/sys/net /proc/sys/net
mount -o remount,bind,rw,nosuid,nodev,noexec /proc/sys/net
if [ -e /proc/sysrq-trigger ]; then
  mount --bind /proc/sysrq-trigger /proc/sysrq-trigger
  mount -o remount,bind,ro /proc/sysrq-trigger
fi

# 3. The future /run, built aside (the state directory may be under /tmp, which is about to be covered).
#    Host paths to bind back are captured in it now, while the host's view is still visible.
mkdir -p "$state/mnt/run" "$state/etc.upper" "$state/etc.work" "$state/var.upper" "$state/var.work" \
         "$state/root.upper" "$state/root.work"
mount -t tmpfs -o mode=755,nosuid,nodev,size=256m glow-run "$state/mnt/run"
i=0
IFS=$'\n'
for b in $binds; do
  [ -e "$b" ] || { say "bind source $b does not exist"; exit 1; }
  if [ -d "$b" ]; then mkdir -p "$state/mnt/run/glow-harness/binds/$i"
  else mkdir -p "$state/mnt/run/glow-harness/binds"; : > "$state/mnt/run/glow-harness/binds/$i"; fi
  mount --rbind "$b" "$state/mnt/run/glow-harness/binds/$i"
  i=$((i + 1))
done
unset IFS
if [ -d "$state/units" ]; then
  mkdir -p "$state/mnt/run/glow-harness"
  cp -a "$state/units" "$state/mnt/run/glow-harness/units"
fi

# 4. Overlays: the host's /etc, /var and /root as lower layers, the node's state directory as upper layers.
mount -t overlay glow-etc -o "lowerdir=/etc,upperdir=$state/etc.upper,workdir=$state/etc.work" /etc
mount -t overlay glow-var -o "lowerdir=/var,upperdir=$state/var.upper,workdir=$state/var.work" /var
mount -t overlay glow-root -o "lowerdir=/root,upperdir=$state/root.upper,workdir=$state/root.work" /root
if [ "$podman" = 1 ]; then
  # overlay-on-overlay fails: podman's storage needs a real directory
  mkdir -p "$state/containers" /var/lib/containers
  mount --bind "$state/containers" /var/lib/containers
fi

# 5. Fresh /run, /tmp, /var/tmp (Debian's tmpfiles would wipe a shared /tmp; the node's /run is its own).
mount --move "$state/mnt/run" /run
mount -t tmpfs -o mode=1777,nosuid,nodev,size=1g glow-tmp /tmp
mount -t tmpfs -o mode=1777,nosuid,nodev,size=1g glow-vartmp /var/tmp

# 6. A minimal private /dev like systemd-nspawn's: the node never writes to the host's console or kmsg.
dev=/run/glow-harness/dev
mkdir -p "$dev"
mount -t tmpfs -o mode=755,nosuid,size=4m glow-dev "$dev"
for n in null zero full random urandom tty net/tun fuse; do
  [ -e "/dev/$n" ] || continue
  mkdir -p "$(dirname "$dev/$n")"
  : > "$dev/$n"
  mount --bind "/dev/$n" "$dev/$n"
done
: > "$dev/console"
mount --bind /dev/null "$dev/console"
mkdir -p "$dev/pts" "$dev/shm" "$dev/mqueue"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5,nosuid,noexec glow-devpts "$dev/pts"
ln -s pts/ptmx "$dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev,size=256m glow-shm "$dev/shm"
mount -t mqueue -o nosuid,nodev,noexec mqueue "$dev/mqueue"
ln -s /proc/self/fd "$dev/fd"
ln -s /proc/self/fd/0 "$dev/stdin"
ln -s /proc/self/fd/1 "$dev/stdout"
ln -s /proc/self/fd/2 "$dev/stderr"
ln -s /proc/kcore "$dev/core"
mount --move "$dev" /dev
rmdir "$dev"

# 7. A fresh read-only sysfs (the host's shows the host's NICs in /sys/class/net) with a /sys/fs/cgroup of the
#    node's own: a private tmpfs with the host's hierarchies mounted afresh from inside the cgroup namespace, so
#    that each shows the node's subtree as its root. (Moving the host's /sys/fs/cgroup tmpfs instead shares its
#    superblock: systemd then remounts it read-only and creates directories in it, on the host.) Every enabled
#    controller the host has not mounted gets an empty read-only placeholder, so that systemd does not mount new
#    kernel-wide hierarchies.
cg=/run/glow-harness/cgroup
mkdir -p "$cg"
mount -t tmpfs -o mode=755,nosuid,nodev,noexec,size=1m glow-cgroup "$cg"
controllers=" "
while read -r c _ _ _; do
  case $c in '#'*) ;; *) controllers+="$c " ;; esac
done < /proc/cgroups
while read -r line; do
  pre=${line%% - *}
  read -r fstype _ superopts <<< "${line#* - }"
  read -r _ _ _ _ mp _ <<< "$pre"
  case $fstype in cgroup | cgroup2) ;; *) continue ;; esac
  case $mp in /sys/fs/cgroup/*/* | /sys/fs/cgroup) continue ;; /sys/fs/cgroup/*) ;; *) continue ;; esac
  n=${mp#/sys/fs/cgroup/}
  opts=""
  IFS=,
  for o in $superopts; do
    if [[ $o == name=* || $controllers == *" $o "* ]]; then opts+="${opts:+,}$o"; fi
  done
  unset IFS
  mkdir "$cg/$n"
  if [ "$fstype" = cgroup2 ]; then
    mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$cg/$n"
  else
    mount -t cgroup -o "nosuid,nodev,noexec,$opts" cgroup "$cg/$n"
  fi
done < /proc/self/mountinfo
for e in /sys/fs/cgroup/*; do
  if [ -L "$e" ]; then ln -s "$(readlink "$e")" "$cg/${e##*/}"; fi
done
placeholder() {
  [ -e "$cg/$1" ] && return 0
  mkdir "$cg/$1"
  mount -t tmpfs -o ro,nosuid,nodev,noexec,size=4k,mode=555 glow-no-cgroup "$cg/$1"
}
for c in $controllers; do placeholder "$c"; done
placeholder cpu,cpuacct
placeholder net_cls,net_prio
mount -o remount,ro "$cg"
sys=/run/glow-harness/sys
mkdir -p "$sys"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$sys"
mount --move "$cg" "$sys/fs/cgroup"
umount -l /sys
mount --move "$sys" /sys
rmdir "$sys" "$cg"

# 8. Bind the captured host paths back at their own path.
i=0
IFS=$'\n'
for b in $binds; do
  src=/run/glow-harness/binds/$i
  if [ -d "$src" ]; then mkdir -p "$b"
  elif [ ! -e "$b" ]; then mkdir -p "$(dirname "$b")"; : > "$b"; fi
  mount --move "$src" "$b"
  if [ -d "$src" ]; then rmdir "$src"; else rm -f "$src"; fi
  i=$((i + 1))
done
unset IFS
# never rm -r here: a bind that failed to move would expose a host directory below
[ ! -d /run/glow-harness/binds ] || rmdir /run/glow-harness/binds

# 9. The rest of the host's tree is read-only inside the node (a stray `rm -rf` in a test stays harmless).
if [ "$ro_root" = 1 ]; then
  mount -o remount,bind,ro /
fi

# 10. The node's private /etc: identity, a boot target that wants only journald and dbus, no host enablement,
#     masked generators and host services, a volatile journal without rate limits.
printf '%s\n' "$machine_id" > /etc/machine-id
printf '%s\n' "$name" > /etc/hostname
rm -f /var/lib/dbus/machine-id
ln -s /etc/machine-id /var/lib/dbus/machine-id
if ! grep -q "[[:space:]]$name\$" /etc/hosts 2>/dev/null; then
  printf '127.0.1.1\t%s\n' "$name" >> /etc/hosts
fi

rm -rf /etc/systemd/system /etc/systemd/system-generators /etc/systemd/system.conf.d /etc/systemd/journald.conf.d
mkdir -p /etc/systemd/system /etc/systemd/system-generators /etc/systemd/system.conf.d /etc/systemd/journald.conf.d

for g in /lib/systemd/system-generators/* /usr/lib/systemd/system-generators/* \
         /usr/local/lib/systemd/system-generators/*; do
  ln -sf /dev/null "/etc/systemd/system-generators/${g##*/}"
done

mask() { [ -e "/etc/systemd/system/$1" ] || ln -s /dev/null "/etc/systemd/system/$1"; }
keep='^(systemd-journald\.service|systemd-journald\.socket|systemd-journald-dev-log\.socket|dbus\.service|dbus\.socket)$'
for f in /lib/systemd/system/*.wants/* /usr/lib/systemd/system/*.wants/*; do
  u=${f##*/}
  [[ $u =~ $keep ]] || mask "$u"
done
for u in systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
         systemd-udev-trigger.service systemd-udev-settle.service \
         systemd-logind.service getty@.service serial-getty@.service console-getty.service \
         container-getty@.service getty.target getty-static.service \
         systemd-timesyncd.service systemd-networkd.service systemd-networkd.socket \
         systemd-networkd-wait-online.service systemd-resolved.service modprobe@.service \
         systemd-binfmt.service proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount \
         systemd-tmpfiles-setup.service systemd-tmpfiles-setup-dev.service systemd-tmpfiles-clean.timer \
         systemd-tmpfiles-clean.service systemd-journald-audit.socket systemd-journal-flush.service \
         systemd-remount-fs.service systemd-sysctl.service systemd-modules-load.service \
         systemd-random-seed.service systemd-firstboot.service systemd-sysusers.service \
         systemd-hwdb-update.service systemd-journal-catalog-update.service systemd-update-done.service \
         systemd-machine-id-commit.service systemd-update-utmp.service \
         podman.socket podman.service podman-restart.service podman-auto-update.timer \
         podman-auto-update.service podman-clean-transient.service \
         apt-daily.timer apt-daily-upgrade.timer man-db.timer fstrim.timer e2scrub_all.timer \
         e2scrub_reap.service dpkg-db-backup.timer postgresql.service cron.service ssh.service; do
  mask "$u"
done

cat > "/etc/systemd/system/$target" <<EOF
[Unit]
Description=Glow test node ($name)
Documentation=file:///work/main/test/harness/README.md
Wants=systemd-journald.service systemd-journald.socket dbus.socket dbus.service $wants
After=systemd-journald.service dbus.socket dbus.service
AllowIsolate=yes
EOF
ln -s "$target" /etc/systemd/system/default.target

# unit files given by the test (plain files in a tmpfs, no mount below: rm -r is safe here)
if [ -d /run/glow-harness/units ]; then
  for u in /run/glow-harness/units/*; do
    rm -rf "/etc/systemd/system/${u##*/}"   # a mask is a symlink to /dev/null: never write through it
    cp -a "$u" /etc/systemd/system/
  done
  rm -r /run/glow-harness/units
fi
rmdir /run/glow-harness

cat > /etc/systemd/system.conf.d/glow-harness.conf <<'EOF'
[Manager]
ShowStatus=no
LogColor=no
EOF
cat > /etc/systemd/journald.conf.d/glow-harness.conf <<'EOF'
[Journal]
Storage=volatile
RateLimitIntervalSec=0
RateLimitBurst=0
ReadKMsg=no
Audit=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
EOF

if [ "$podman" = 1 ]; then
  mkdir -p /etc/containers
  cat > /etc/containers/containers.conf <<'EOF'
# Written by Glow's test harness (test/harness/boot-node.sh).
[containers]
# The sandbox lacks CAP_SYS_RESOURCE above this: hard limits over 20000 open files fail.
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "systemd"
events_logger = "journald"
EOF
fi

# 11. systemd, with a clean environment. Its own output goes to our stdout/stderr (the node's boot.log).
exec env -i container=glow-harness PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  /lib/systemd/systemd --system "--unit=$target"
