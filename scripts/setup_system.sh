#!/usr/bin/env bash
# Installs the system packages the project uses when they are missing: the Fashion-MNIST idx files,
# headless Chromium (the report's browser check) and a PostgreSQL server (the multi-machine sweep test).
# Needs root for apt-get; without it, it says what is missing and carries on (the tests that need a missing
# piece then skip with the reason).
set -u
need=()
[ -d /usr/share/datasets/fashion-mnist ] || need+=(dataset-fashion-mnist)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "setup_system: missing ${need[*]}; run as root: apt-get update && apt-get install -y ${need[*]}" >&2
    exit 0
fi
echo "setup_system: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || echo "setup_system: apt-get install ${need[*]} failed; the tests that need them will skip" >&2
