#!/bin/bash
# watchdog.sh — cleans up a test process's systemd nodes and hubs when that process dies, however it dies.
#
#   watchdog.sh watch RUN_DIR OWNER_PID OWNER_START   (started detached by watchdog.ts, stdin = a pipe from the owner)
#   watchdog.sh reap  RUN_DIR                          (clean a run now: used for stale runs of dead owners)
#
# The owner (the test process) keeps the write end of a pipe on our stdin and never writes to it. When the owner
# exits — normally, by an exception, or by SIGKILL — the kernel closes it and `read` sees end-of-file at once; a
# poll of /proc/OWNER_PID (same PID *and* same start time, so a reused PID does not fool it) backs that up every
# 2 s. Then every registered node and hub is killed with SIGKILL, its cgroup directories are removed deepest
# first, its state directory is removed (only if it carries the harness's marker file), and the run directory
# goes. The nodes usually die before that anyway: each is started under `setpriv --pdeathsig KILL` and
# `unshare --kill-child=SIGKILL`, so the kernel kills them when the owner's main thread ends.
#
# Registry (written by systemd-node.ts), one file per node or hub in RUN_DIR/reg/, one fact a line:
#   pid <pid> <start time>      the process to kill (a node's systemd, a hub's holder)
#   cgroup <dir>                a cgroup directory to remove with everything below it
#   state <dir>                 a state directory to remove (must contain .glow-harness-state)
# RUN_DIR/run-cgroups lists the run's own cgroup directories (<own>/glow/<run>), removed if empty, and their
# parents (<own>/glow) too if empty.
set -u
shopt -s nullglob

mode=${1:?usage: watchdog.sh watch|reap RUN_DIR ...}
run=${2:?RUN_DIR missing}

same_process() { # PID START: is that process still the one we saw (and not a zombie)?
  local line fields
  read -r line < "/proc/$1/stat" 2>/dev/null || return 1
  line=${line##*) }
  read -r -a fields <<< "$line"
  [ "${fields[0]}" != Z ] && [ "${fields[0]}" != X ] && [ "${fields[19]}" = "$2" ]
}

remove_cgroup_tree() { # DIR: deepest first, retried while the last killed processes leave
  local dir=$1 i
  for i in $(seq 100); do
    [ -d "$dir" ] || return 0
    find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null
    [ -d "$dir" ] || return 0
    sleep 0.05
  done
  echo "watchdog: cannot remove cgroup $dir" >&2
}

reap() {
  local f k v pid start cgroups states deadline
  local -a pids=() starts=()
  # 1. kill everything first, so that all nodes die in parallel
  for f in "$run"/reg/*; do
    while read -r k v; do
      if [ "$k" = pid ]; then
        read -r pid start <<< "$v"
        if same_process "$pid" "$start"; then
          kill -KILL "$pid" 2>/dev/null
          pids+=("$pid"); starts+=("$start")
        fi
      fi
    done < "$f"
  done
  # 2. wait (bounded) until they are dead
  deadline=$((SECONDS + 10))
  for i in "${!pids[@]}"; do
    while same_process "${pids[$i]}" "${starts[$i]}" && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
  done
  # 3. remove cgroups and state
  for f in "$run"/reg/*; do
    cgroups=(); states=()
    while read -r k v; do
      case $k in
        cgroup) cgroups+=("$v") ;;
        state) states+=("$v") ;;
      esac
    done < "$f"
    for v in "${cgroups[@]}"; do remove_cgroup_tree "$v"; done
    for v in "${states[@]}"; do
      if [ -e "$v/.glow-harness-state" ]; then rm -rf --one-file-system -- "$v"; fi
    done
    rm -f -- "$f"
  done
  if [ -f "$run/run-cgroups" ]; then
    while read -r v; do
      rmdir -- "$v" 2>/dev/null
      rmdir -- "${v%/*}" 2>/dev/null
    done < "$run/run-cgroups"
  fi
  if [ -e "$run/.glow-harness-run" ]; then rm -rf --one-file-system -- "$run"; fi
  rmdir -- "${run%/*}" 2>/dev/null   # the base directory, if no other run uses it
}

case $mode in
  watch)
    owner=${3:?OWNER_PID missing}
    owner_start=${4:?OWNER_START missing}
    echo $$ > "$run/watchdog.pid"
    while :; do
      read -r -t 2 _
      status=$?
      if [ $status -gt 128 ]; then       # timeout: nothing to read, the pipe is still open
        same_process "$owner" "$owner_start" && continue
      elif [ $status -eq 0 ]; then       # the owner wrote a line: ignore it
        continue
      fi
      break                              # end of file: the owner is gone
    done
    reap
    ;;
  reap)
    reap
    ;;
  *)
    echo "usage: watchdog.sh watch|reap RUN_DIR ..." >&2
    exit 2
    ;;
esac
