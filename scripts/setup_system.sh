#!/usr/bin/env bash
# Installs the Debian packages a target uses, when they are missing:
#   setup_system.sh demo   what `make demo` uses (the digits demo needs none: scikit-learn ships its data)
#   setup_system.sh test   what the tests use: the Fashion-MNIST idx files, headless Chromium (the report's and
#                          the dashboard's browser checks) and a PostgreSQL server (the multi-machine sweep test)
# Needs root for apt-get; without it, it says what is missing and carries on. The tests that need a missing
# piece then skip with the reason, or fail with it under CI=true (so a green CI run never hides one).
set -u
target=${1:-test}
need=()
case "$target" in
    demo) ;;
    test)
        [ -d /usr/share/datasets/fashion-mnist ] || need+=(dataset-fashion-mnist)
        command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need+=(chromium)
        ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
        ;;
    *) echo "setup_system: unknown target '$target'; give demo or test" >&2; exit 2 ;;
esac
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "setup_system: missing ${need[*]}; run as root: apt-get update && apt-get install -y ${need[*]}" >&2
    exit 0
fi
echo "setup_system: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || echo "setup_system: apt-get install ${need[*]} failed; the tests that need them will skip (fail under CI=true)" >&2
