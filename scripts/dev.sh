#!/usr/bin/env bash
# The README's two commands. Each sets up what it needs on a fresh machine, then runs:
#   scripts/dev.sh main   the main job (nascli create --config config_nas.yml --foreground)
#   scripts/dev.sh test   ruff, then the test suite (extra arguments go to pytest); installs
#                         Debian's chromium first for the web UI's browser tests if absent
# Set-up: a virtual environment in .venv (or $NASCLI_VENV) with nascli installed editable with
# its dev extras. torch comes from a local CPU wheel when pip can see one (this workplace keeps
# torch 2.13.0 on disk, which installs in seconds); otherwise from the package index.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${NASCLI_VENV:-.venv}"

pip_quiet() {
  # Drop pip's notes about absent local index folders; keep real errors and the exit status.
  "$venv/bin/pip" -q "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  return "${PIPESTATUS[0]}"
}

setup() {
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  local stamp="$venv/.nascli-installed"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
      local wheels
      wheels=$(mktemp -d)
      # Is the CPU wheel on this machine's disk? (asks no index; its dependencies come from one)
      if "$venv/bin/pip" download -q --no-index --no-deps -d "$wheels" "torch==2.13.0" >/dev/null 2>&1; then
        pip_quiet install "torch==2.13.0"
      else
        pip_quiet install "torch>=2.1"
      fi
      rm -rf "$wheels"
    fi
    # The Ray extra too: the Ray training service's tests start a real local cluster.
    pip_quiet install -e ".[dev,ray]"
    touch "$stamp"
  fi
  export PATH="$PWD/$venv/bin:$PATH"
}

browser() {
  # tests/webui's browser tests drive Debian's chromium through Playwright (installed into the
  # venv by the dev extra; Playwright's own browser downloads are never used). Installed here
  # when absent and we may (root, apt-get); otherwise those tests skip and say why.
  command -v chromium >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium for the web UI's browser tests (apt-get)" >&2
    local log
    log=$(mktemp)
    if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } \
        >"$log" 2>&1; then
      tail -5 "$log" >&2
      echo "warning: chromium could not be installed; the browser tests will be skipped" >&2
    fi
    rm -f "$log"
  fi
  return 0
}

case "${1:-}" in
  main)
    shift
    setup
    # The main job: classic NAS on trial/trial.py as config_nas.yml describes it, attached, so
    # the run ends by printing the best architecture and its accuracy.
    exec nascli create --config config_nas.yml --foreground "$@"
    ;;
  test)
    shift
    setup
    browser
    ruff check .
    exec python -m pytest "$@"
    ;;
  *)
    echo "usage: scripts/dev.sh main|test [args...]" >&2
    exit 2
    ;;
esac
