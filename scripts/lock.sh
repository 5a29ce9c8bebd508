#!/usr/bin/env bash
# Re-resolve requirements/*.in into pinned requirements/*.lock in a throw-away virtualenv.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$python -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet --disable-pip-version-check -r requirements/runtime.in
"$tmp/venv/bin/pip" freeze --all --exclude pip --exclude setuptools --exclude wheel | LC_ALL=C sort > "$tmp/runtime"
"$tmp/venv/bin/pip" install --quiet --disable-pip-version-check -r requirements/dev.in
"$tmp/venv/bin/pip" freeze --all --exclude pip --exclude setuptools --exclude wheel | LC_ALL=C sort > "$tmp/dev"
{ echo "# Pinned: the services' runtime environment (containers). Regenerate with \`make lock\`."; cat "$tmp/runtime"; } \
  > requirements/runtime.lock
{ echo "# Pinned: the whole environment of \`make run\` / \`make test\`. Regenerate with \`make lock\`.";
  echo "-r runtime.lock"; LC_ALL=C comm -13 "$tmp/runtime" "$tmp/dev"; } > requirements/dev.lock
echo "requirements/runtime.lock and requirements/dev.lock rewritten; review the diff"
