#!/usr/bin/env bash
# A loopback-only Docker engine for the test suite, and the busybox image the tests use.
#
#   bash .ci/dockerd.sh          start (or reuse) the engine; prints `export DOCKER_HOST=...`
#   bash .ci/dockerd.sh --stop   stop the engine this script started (only its own pid)
#
# Network rule: no bridge, no iptables, no forwarding or masquerading; containers can only use
# network "none" or "host". The engine has its own data/exec root and unix socket under
# $WARROOM_DOCKERD_DIR (default: $TMPDIR/warroom-dockerd), so a system engine is never touched.
# Only the export line goes to stdout (the caller sources it); progress and errors go to stderr.
# Installs nothing: .ci/run installs docker.io and busybox-static.
set -euo pipefail

DIR=${WARROOM_DOCKERD_DIR:-${TMPDIR:-/tmp}/warroom-dockerd}
SOCK="$DIR/docker.sock"
PIDFILE="$DIR/docker.pid"
LOG="$DIR/dockerd.log"
IMAGE=warroom/busybox:latest
WAIT_S=${WARROOM_DOCKERD_WAIT_S:-30}
export DOCKER_HOST="unix://$SOCK"

say() { echo "dockerd.sh: $*" >&2; }

running_pid() {
  # The pid in our pidfile, if that process is alive and is a dockerd.
  [ -f "$PIDFILE" ] || return 1
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  grep -q dockerd "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

stop_engine() {
  local pid
  if ! pid=$(running_pid); then
    say "no engine of ours is running in $DIR"
    return 0
  fi
  say "stopping dockerd (pid $pid)"
  kill -TERM "$pid"
  for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; return 0; }
    sleep 0.1
  done
  say "dockerd $pid did not stop in 15 s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
}

answers() { timeout 5 docker info >/dev/null 2>&1; }

start_engine() {
  command -v dockerd >/dev/null || { say "dockerd is not installed (apt-get install docker.io)"; return 1; }
  command -v docker >/dev/null || { say "the docker CLI is not installed (apt-get install docker.io)"; return 1; }
  mkdir -p "$DIR/data" "$DIR/exec"
  rm -f "$SOCK"
  say "starting dockerd in $DIR"
  # setsid: the engine outlives this script; --stop (or the caller's trap) ends it.
  setsid dockerd \
    --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --data-root "$DIR/data" --exec-root "$DIR/exec" --pidfile "$PIDFILE" \
    --host "unix://$SOCK" >"$LOG" 2>&1 </dev/null &
  local pid=$! waited=0
  while ! answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "dockerd exited while starting; last lines of $LOG:"
      tail -n 15 "$LOG" >&2
      return 1
    fi
    if [ "$waited" -ge "$((WAIT_S * 2))" ]; then
      say "dockerd did not answer within ${WAIT_S}s; last lines of $LOG:"
      tail -n 15 "$LOG" >&2
      kill -TERM "$pid" 2>/dev/null || true
      return 1
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
  say "dockerd is up (pid $pid, $(docker version --format '{{.Server.Version}}' 2>/dev/null))"
}

ensure_image() {
  if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    return 0
  fi
  local busybox=""
  for candidate in /bin/busybox /usr/bin/busybox; do
    [ -x "$candidate" ] && { busybox=$candidate; break; }
  done
  [ -n "$busybox" ] || { say "no busybox to build $IMAGE from (apt-get install busybox-static)"; return 1; }
  local root
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/tmp" "$root/www"
  chmod 1777 "$root/tmp"
  cp "$busybox" "$root/bin/busybox"
  for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
  done
  tar -C "$root" -c . | docker import - "$IMAGE" >/dev/null
  rm -rf "$root"
  say "imported $IMAGE from $busybox"
}

case "${1:-}" in
  --stop) stop_engine; exit 0 ;;
  "") ;;
  *) say "usage: $0 [--stop]"; exit 2 ;;
esac

if pid=$(running_pid) && answers; then
  say "reusing dockerd (pid $pid) in $DIR"
else
  start_engine
fi
ensure_image
echo "export DOCKER_HOST=unix://$SOCK"
