#!/usr/bin/env bash
# Installs konifer-edge into ./.venv on Debian 12. libvips and the HEIC and JPEG XL codecs come as
# wheels (docs/imaging.md): no system libvips is used. Pass "test" to add the test tools too.
set -euo pipefail
cd "$(dirname "$0")/.."

# The wheels of libvips, libheif and libjxl link the system C++ runtime (present on any Debian 12).
system_packages=(libstdc++6)
# The end-to-end test drives Debian's Chromium with Playwright (never Playwright's own browser);
# Playwright's bundled node driver needs libatomic.so.1, which a fresh Debian 12 lacks.
if [ "${1:-}" = "test" ]; then system_packages+=(chromium libatomic1); fi
missing=()
for package in "${system_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "${1:-}" = "test" ]; then
  .venv/bin/python -m pip install -q -e ".[test]"
else
  .venv/bin/python -m pip install -q -e .
fi
