#!/usr/bin/env bash
# One command for the comparative benchmark (not part of the test suite):
#   tests/bench/run.sh            full run (~15 min), prints the tables, writes docs/benchmarks.md
#   tests/bench/run.sh --quick    short smoke run (no doc written)
#   tests/bench/run.sh --only soak    10-minute soak of mixed MCP traffic (not in the full run)
#   python3 tests/bench/list_cache.py  tools/list from the list cache against the SDK server
#                                      (not in the full run; needs the release build)
# Extra arguments go to bench.py (--only 1,4|burst|soak  --targets direct,nginx  --doc PATH
#   --baseline-bin PATH (adds before-nofilters, before-balanced)  --idle-streams N
#   --burst-conns N  --soak-minutes N  --strace). A run rewrites only the sections of
#   docs/benchmarks.md it measured.
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
command -v nginx   >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]   || missing+=(nginx-light)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
command -v wrk     >/dev/null 2>&1 || missing+=(wrk)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}" >&2
  SUDO=$( [ "$(id -u)" = 0 ] || echo sudo )
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || {
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || {
      # nginx-light is not in every release
      missing=("${missing[@]/nginx-light/nginx}")
      $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
    }
  }
fi
export PATH="$PATH:/usr/sbin:/sbin"

cargo build --release -p mcp-edge >&2
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
exec python3 tests/bench/bench.py "$@"
