#!/usr/bin/env bash
# The konifer-edge benchmark suite in one command (see bench/README.md).
# Installs what it needs (Debian's wrk and nginx; thumbor into bench/.venvs/thumbor; ipx with sharp
# into bench/.node; matplotlib and py-spy into bench/.venvs/tools), then runs bench/suite.py, which
# starts every server on 127.0.0.1, drives it with wrk and writes bench/results/<date>-<host>.{json,png,md}.
# A peer that cannot be installed is recorded in the results and the suite carries on without it.
set -euo pipefail
cd "$(dirname "$0")/.."
bench=bench
mkdir -p "$bench/tmp"

THUMBOR_VERSION=7.8.0
IPX_VERSION=3.1.1
MATPLOTLIB_VERSION=3.11.2
PY_SPY_VERSION=0.4.3

as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
say() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

[ -x .venv/bin/konifer-edge ] || { say "no .venv: running scripts/install.sh"; scripts/install.sh; }

# Debian's load generator and reference static server; node and npm for ipx if the machine lacks them.
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  say "apt-get install ${missing[*]}"
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"

# The suite's own tools: charts and profiles (never dependencies of the package).
tools=$bench/.venvs/tools
if ! { [ -x "$tools/bin/py-spy" ] && "$tools/bin/python" -c 'import matplotlib' 2>/dev/null; }; then
  say "installing matplotlib and py-spy into $tools"
  python3 -m venv "$tools"
  "$tools/bin/python" -m pip install -q "matplotlib==$MATPLOTLIB_VERSION" "py-spy==$PY_SPY_VERSION"
fi

# thumbor in its own venv (it pins its own Pillow and friends). A failure is recorded, not fatal.
thumbor=$bench/.venvs/thumbor
: > "$bench/tmp/install-thumbor.log"
if [ ! -x "$thumbor/bin/thumbor" ]; then
  say "installing thumbor $THUMBOR_VERSION into $thumbor"
  if { python3 -m venv "$thumbor" && "$thumbor/bin/python" -m pip install -q "thumbor==$THUMBOR_VERSION"; } \
      > "$bench/tmp/install-thumbor.log" 2>&1; then
    : > "$bench/tmp/install-thumbor.log"
  else
    say "thumbor could not be installed (recorded in the results)"
  fi
fi

# ipx (with sharp and its own libvips) from npm into bench/.node. A failure is recorded, not fatal.
node_dir=$bench/.node
: > "$bench/tmp/install-ipx.log"
if [ ! -f "$node_dir/node_modules/ipx/bin/ipx.mjs" ]; then
  say "installing ipx $IPX_VERSION into $node_dir"
  mkdir -p "$node_dir"
  [ -f "$node_dir/package.json" ] || echo '{"name": "konifer-edge-bench-peers", "private": true}' > "$node_dir/package.json"
  if ! (cd "$node_dir" && npm install --no-audit --no-fund --loglevel=error "ipx@$IPX_VERSION") \
      > "$bench/tmp/install-ipx.log" 2>&1; then
    say "ipx could not be installed (recorded in the results)"
  elif ! (cd "$node_dir" && node -e "require('sharp')") >> "$bench/tmp/install-ipx.log" 2>&1; then
    say "ipx installed but sharp does not load (recorded in the results)"
    rm -rf "$node_dir/node_modules/ipx"
  else
    : > "$bench/tmp/install-ipx.log"
  fi
fi

# Everything after this is bounded: each wrk run has its duration, each step a timeout, and the
# whole suite a ceiling (the default run takes about 16 minutes on 2 cores).
limit=${BENCH_TIME_LIMIT:-45m}
timeout --kill-after=60 "$limit" .venv/bin/python "$bench/suite.py" "$@"
# A partial run (BENCH_ONLY) has no goals table to show; only a full one replaces the README's.
[ -n "${BENCH_ONLY:-}" ] || .venv/bin/python "$bench/readme.py"
