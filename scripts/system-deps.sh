#!/usr/bin/env bash
# Installs the Debian tools the test suite needs, when it can (root); names them when it cannot.
# Under CI=true a missing tool is an error, never a skip.
set -euo pipefail

declare -A PACKAGE_OF=([docker-compose]=docker-compose [promtool]=prometheus [chromium]=chromium)
missing=()
for tool in "${!PACKAGE_OF[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] && exit 0

packages=()
for tool in "${missing[@]}"; do packages+=("${PACKAGE_OF[$tool]}"); done

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: installing Debian packages: ${packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  exit 0
fi

echo "system-deps: missing tools: ${missing[*]} (Debian packages: ${packages[*]}); install them as root." >&2
if [ "${CI:-}" = "true" ]; then
  exit 1
fi
echo "system-deps: the tests that need them will be skipped (they fail under CI=true)." >&2
