#!/usr/bin/env bash
# Install the Debian packages a step needs when they are missing (as root, or via sudo).
# Usage: scripts/install-system-packages.sh python|chromium|postgresql|redis|compose ...
set -euo pipefail

packages=()
for want in "$@"; do
  case "$want" in
    python)     packages+=(python3-venv python3-pip) ;;
    chromium)   packages+=(chromium chromium-driver) ;;
    postgresql) packages+=(postgresql) ;;
    redis)      packages+=(redis-server) ;;
    compose)    packages+=(docker-compose) ;;
    *) echo "unknown package group: $want" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "missing system packages: ${packages[*]}; install them as root (apt-get install ${packages[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}"
