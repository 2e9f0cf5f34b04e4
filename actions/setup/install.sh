#!/usr/bin/env bash
# Install Python packages into the job's interpreter: with uv when it can be had (a pinned
# version, installed with pip), else with pip. On a fresh runner uv installs mlops-ci's
# dependencies in seconds where pip takes minutes; the job log says which installer ran.
#
#   install.sh ARGS...   the arguments of `pip install` (`mlops-ci[s3]`, `-r requirements.txt`)
#
# MLOPS_CI_PYTHON_BIN: the interpreter (default: `python` on PATH). MLOPS_CI_UV: the uv
# requirement to install (default the pinned one below); `none` installs with pip alone;
# `present` uses a uv the interpreter already has, else pip (nothing new is installed).
set -euo pipefail
py="$(command -v "${MLOPS_CI_PYTHON_BIN:-python}")"
uv_spec="${MLOPS_CI_UV:-uv==0.13.9}"

installer=pip
if [ "$uv_spec" != none ]; then
  if "$py" -m uv --version >/dev/null 2>&1; then
    installer=uv
  elif [ "$uv_spec" = present ]; then
    :
  elif "$py" -m pip install --disable-pip-version-check -q "$uv_spec" >/dev/null 2>&1; then
    installer=uv
  else
    echo "mlops-ci setup: uv ($uv_spec) could not be installed; falling back to pip"
  fi
fi
echo "mlops-ci setup: installing with $installer: $*"
if [ "$installer" = uv ]; then
  # uv installs outside a virtual environment only when told to (setup-python's interpreter).
  system=()
  if [ "$("$py" -c 'import sys; print(sys.prefix == sys.base_prefix)')" = True ]; then
    system=(--system)
  fi
  exec "$py" -m uv pip install --python "$py" "${system[@]}" "$@"
fi
exec "$py" -m pip install --disable-pip-version-check "$@"
