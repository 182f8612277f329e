#!/usr/bin/env bash
# Sets up a machine for webtune: a Vulkan driver for WebGPU in Node.js (Mesa's software driver when
# there is no GPU), pnpm, the workspace's dependencies and a build. Safe to run again.
#   tools/setup/setup.sh            everything
#   WEBTUNE_SETUP_BROWSER=1 ...     also Chromium (for the web app's browser tests)
#   WEBTUNE_SETUP_TORCH=1 ...       also .venv with torch, transformers, peft, trl (tools/golden/requirements.txt):
#                                   the benchmarks' Transformers + PEFT baseline and the golden generators;
#                                   pip reads PIP_INDEX_URL, so a local wheelhouse works
set -euo pipefail
cd "$(dirname "$0")/../.."

PNPM_VERSION=12.4.2
say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"; else return 1; fi
}

need_vulkan_driver() {
  # Any installed Vulkan ICD counts; on Debian 12 Mesa's own lavapipe is too old for Dawn, so require Mesa >= 24 there.
  [ -e /usr/lib/x86_64-linux-gnu/libvulkan.so.1 ] || [ -e /usr/lib/aarch64-linux-gnu/libvulkan.so.1 ] || return 0
  compgen -G '/usr/share/vulkan/icd.d/*.json' >/dev/null || compgen -G '/etc/vulkan/icd.d/*.json' >/dev/null || return 0
  if command -v dpkg-query >/dev/null && dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | grep -q '^22\.'; then
    return 0
  fi
  return 1
}

apt_packages=()
if [ "$(uname -s)" = Linux ] && need_vulkan_driver; then
  if [ -r /etc/os-release ] && . /etc/os-release && [ "${VERSION_CODENAME:-}" = bookworm ]; then
    say "installing Mesa's Vulkan drivers from bookworm-backports (Dawn needs Mesa >= 24)"
    if ! as_root true; then
      cat >&2 <<'X'
[setup] WebGPU in Node.js needs a Vulkan driver and this script is not root. Run as root:
  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > /etc/apt/sources.list.d/bookworm-backports.sources
  apt-get update && apt-get install -y --no-install-recommends -t bookworm-backports mesa-vulkan-drivers && apt-get install -y libvulkan1
then run this script again.
X
      exit 1
    fi
    as_root tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null <<'X'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
X
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t bookworm-backports mesa-vulkan-drivers >/dev/null
    apt_packages+=(libvulkan1)
  elif command -v apt-get >/dev/null; then
    apt_packages+=(mesa-vulkan-drivers libvulkan1)
  else
    say "no Vulkan driver found: install your GPU's Vulkan driver, or Mesa's lavapipe (mesa-vulkan-drivers), and libvulkan1"
    exit 1
  fi
fi
[ "${WEBTUNE_SETUP_BROWSER:-0}" = 1 ] && ! command -v chromium >/dev/null && apt_packages+=(chromium)
[ "${WEBTUNE_SETUP_TORCH:-0}" = 1 ] && ! python3 -c 'import ensurepip, venv' 2>/dev/null && apt_packages+=(python3-venv)
if [ ${#apt_packages[@]} -gt 0 ]; then
  say "installing ${apt_packages[*]}"
  if ! as_root true; then
    echo "[setup] not root: run  apt-get install -y --no-install-recommends ${apt_packages[*]}  and run this script again" >&2
    exit 1
  fi
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi

if ! command -v pnpm >/dev/null || [ "$(pnpm --version)" != "$PNPM_VERSION" ]; then
  say "installing pnpm $PNPM_VERSION"
  npm install -g "pnpm@$PNPM_VERSION" >/dev/null 2>&1 || { corepack enable && corepack prepare "pnpm@$PNPM_VERSION" --activate; }
fi

say "installing dependencies"
pnpm install --frozen-lockfile
say "building"
pnpm build
if [ "${WEBTUNE_SETUP_TORCH:-0}" = 1 ]; then
  say "making .venv from tools/golden/requirements.txt${PIP_INDEX_URL:+ (index $PIP_INDEX_URL)}"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install --quiet -r tools/golden/requirements.txt
fi
say "ready"
