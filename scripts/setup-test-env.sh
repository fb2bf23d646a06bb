#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain, idempotently:
# a Python virtualenv in .venv with the official Azure SDKs (tests/compat/requirements.txt),
# the Azure CLI in its own virtualenv, .venv-az (tests/compat/requirements-az.txt), and
# Debian's chromium and chromedriver for the portal tests, softhsm2 and opensc for the PKCS#11
# tests, postgresql for the store's PostgreSQL tests, and the JavaScript (npm), Go (modules),
# Java (Maven) and Rust (a crate of its own) SDKs under tests/compat.
set -euo pipefail
cd "$(dirname "$0")/.."

# venv DIR REQUIREMENTS: creates DIR if needed and installs REQUIREMENTS when they changed.
venv() {
  local dir=$1 req=$2
  if [ ! -x "$dir/bin/python" ]; then
    if ! python3 -m venv "$dir" 2>/dev/null; then
      # Debian's python3 ships venv separately.
      rm -rf "$dir"
      apt-get update -qq && apt-get install -y -qq python3-venv
      python3 -m venv "$dir"
    fi
  fi
  local stamp="$dir/.requirements.sha256" want
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
    echo "$want" > "$stamp"
  fi
}

venv .venv tests/compat/requirements.txt
venv .venv-az tests/compat/requirements-az.txt

# SOPS, unmodified (tests/compat/test_sops.py), built from the Go module proxy at a pinned
# version into .tools/bin; built again only when the version changes.
sops_version=v3.13.3
if [ "$(cat .tools/bin/sops.version 2>/dev/null)" != "$sops_version" ]; then
  GOBIN="$PWD/.tools/bin" go install "github.com/getsops/sops/v3/cmd/sops@$sops_version"
  echo "$sops_version" > .tools/bin/sops.version
fi

# The official Azure SDK for JavaScript (tests/compat/test_js_sdk.py), at the versions the lock
# file pins, installed again only when the lock file changed.
js=tests/compat/js
want=$(sha256sum "$js/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$js/node_modules/.lock.sha256" 2>/dev/null)" != "$want" ]; then
  npm ci --prefix "$js" --no-audit --no-fund --loglevel=error
  echo "$want" > "$js/node_modules/.lock.sha256"
fi

# The official Azure SDK for Go (tests/compat/test_go_sdk.py), at the versions go.sum pins, into
# the module cache (a no-op once there).
(cd tests/compat/go && go mod download)

# The official Azure SDK for Java (tests/compat/test_java_sdk.py): Maven fetches what the pom
# pins into ~/.m2 (kept between runs) and builds the scenario.
if command -v mvn >/dev/null 2>&1; then
  mvn -q -B -f tests/compat/java/pom.xml package -DskipTests
fi

# The official Azure SDK for Rust (tests/compat/test_rust_sdk.py): a crate of its own with its
# own lock file, built once here (cargo's incremental build keeps it cheap after).
cargo build --locked --quiet --manifest-path tests/compat/rust/Cargo.toml
cargo build --locked --quiet --manifest-path tests/compat/rust-stable/Cargo.toml --target-dir tests/compat/rust/target

# valgrind for the instruction-count guard (bench/instructions.py, run by scripts/test.sh).
if ! command -v valgrind >/dev/null 2>&1 || ! command -v callgrind_control >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind
fi

# SoftHSM2 and pkcs11-tool for the PKCS#11 root of trust (tests/compat/test_pkcs11.py).
if ! command -v softhsm2-util >/dev/null 2>&1 || ! command -v pkcs11-tool >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2 opensc
fi

# PostgreSQL's server programs for the throwaway clusters the store's tests start and stop
# themselves (crates/coffer-store/tests/support/postgres.rs: initdb in a temporary directory, a
# free loopback port). A default cluster the package may start is never used.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
fi

# Headless Chromium and its WebDriver for the portal tests (tests/compat/test_portal.py).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
fi
