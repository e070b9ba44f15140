#!/usr/bin/env bash
# Installs konifer-edge into a throw-away venv for each Python named and runs tests there, to check
# both ends of `requires-python` (pyproject.toml), and that the first Python beyond it is refused.
#
#   scripts/test-pythons.sh python3.11 /opt/python3.12/bin/python3.12 [-- pytest arguments]
#
# Without pytest arguments it runs the packaging and configuration unit tests and the HTTP smoke test
# (which starts the embedded PostgreSQL, the package with the narrowest wheel support). A Python below
# or above the range must be refused by pip; one inside it must install and pass.
set -euo pipefail
cd "$(dirname "$0")/.."

pythons=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do pythons+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(tests/unit/test_packaging.py tests/unit/test_config.py tests/integration/test_smoke_api.py)
if [ ${#pythons[@]} -eq 0 ]; then
  echo "usage: $0 PYTHON... [-- PYTEST-ARGS...]" >&2
  exit 64
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
for python in "${pythons[@]}"; do
  version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  inside=$("$python" -c 'import sys; print(int((3, 11) <= sys.version_info[:2] < (3, 13)))')
  venv="$work/venv-$version"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  if [ "$inside" = 0 ]; then
    if "$venv/bin/python" -m pip install -q . >"$work/pip-$version.log" 2>&1; then
      echo "FAIL python $version: outside requires-python, yet pip installed the package" >&2
      failed=1
    elif grep -q "requires a different Python" "$work/pip-$version.log"; then
      echo "ok python $version: refused by requires-python, as it should be"
    else
      echo "FAIL python $version: pip failed for another reason:" >&2
      cat "$work/pip-$version.log" >&2
      failed=1
    fi
    continue
  fi
  # Not editable: the venv gets the package as a user would, built from this checkout.
  "$venv/bin/python" -m pip install -q ".[test]"
  if "$venv/bin/python" -m pytest -q -p no:cacheprovider -x "${tests[@]}"; then
    echo "ok python $version: installs and passes ${tests[*]}"
  else
    echo "FAIL python $version" >&2
    failed=1
  fi
done
exit $failed
