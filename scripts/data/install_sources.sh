#!/usr/bin/env bash
# `make data`: install the real MRI sources mrisr trains on that do not come from PyPI (Debian's
# mricron-data: Colin27, INIA19 and the label atlases, into /usr/share/mricron/templates), then list
# every source found (mrisr.data.sources). Never fails: without apt-get, or without the rights to use
# it, it says so and the build uses what is installed.
set -uo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-.venv/bin/python}"
if [ -d /usr/share/mricron/templates ]; then
    echo "mricron-data: installed"
elif command -v apt-get > /dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" != "0" ] && command -v sudo > /dev/null 2>&1; then SUDO="sudo -n"; fi
    echo "mricron-data: installing with apt-get"
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mricron-data; } \
        || echo "mricron-data: could not be installed (no network or no rights); continuing without it"
else
    echo "mricron-data: no apt-get on this machine; continuing without it"
fi
"$PY" -c "
from mrisr.data.sources import find_sources, missing_sources
for s in find_sources():
    print(f'  {s.role:<8}{s.kind:<11}{s.name:<22}{s.package:<13}{s.path}')
for s in missing_sources():
    print(f'  missing {s.kind:<11}{s.name:<22}{s.package}')
" || true
exit 0
