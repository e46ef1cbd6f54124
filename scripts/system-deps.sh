#!/usr/bin/env bash
# Debian packages the renderer and the tests need: WeasyPrint's libraries, fonts for Latin,
# CJK, Arabic/Hebrew and emoji, poppler's pdftotext, Prometheus (the server and promtool, for
# the observability tests) and a Compose implementation to check docker-compose.yml
# (Debian's docker-compose, only when `docker compose` is not there). Installs only what is
# missing, and never starts a daemon.
set -euo pipefail
need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for pkg in libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 fontconfig poppler-utils \
           fonts-dejavu-core fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji prometheus; do
  have_pkg "$pkg" || need+=("$pkg")
done
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
  need+=(docker-compose)
fi
[ ${#need[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: missing ${need[*]} and no apt-get here; install them by hand" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "system-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
# The prometheus package would start its service on :9090; the tests start their own instance
# on loopback. Where no policy says otherwise, forbid starting services for this install only.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod +x "$policy"
  trap '$sudo rm -f "$policy"' EXIT
fi
$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
$sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
