#!/usr/bin/env bash
# `make data`: install the real MRI sources mrisr uses that do not come from PyPI, from Debian:
# mricron-data (Colin27, INIA19 and the label atlases, into /usr/share/mricron/templates) and
# insighttoolkit5-examples (ITK's example images, under /usr/share/doc/insighttoolkit5-examples), then
# list every source found (mrisr.data.sources). Never fails: without apt-get, or without the rights to
# use it, it says so and the build uses what is installed.
set -uo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-.venv/bin/python}"
MISSING=""
[ -d /usr/share/mricron/templates ] || MISSING="$MISSING mricron-data"
[ -d /usr/share/doc/insighttoolkit5-examples/examples/Data ] || MISSING="$MISSING insighttoolkit5-examples"
if [ -z "$MISSING" ]; then
    echo "Debian sources: installed (mricron-data, insighttoolkit5-examples)"
elif command -v apt-get > /dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" != "0" ] && command -v sudo > /dev/null 2>&1; then SUDO="sudo -n"; fi
    echo "installing with apt-get:$MISSING"
    # shellcheck disable=SC2086
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $MISSING; } \
        || echo "could not install$MISSING (no network or no rights); continuing without"
else
    echo "no apt-get on this machine; continuing without$MISSING"
fi
"$PY" -c "
from mrisr.data.sources import find_sources, missing_sources
for s in find_sources():
    print(f'  {s.role:<8}{s.kind:<11}{s.name:<22}{s.package:<13}{s.path}')
for s in missing_sources():
    print(f'  missing {s.kind:<11}{s.name:<22}{s.package}')
" || true
exit 0
