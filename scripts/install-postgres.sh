#!/usr/bin/env bash
# Installs PostgreSQL 15 (Debian bookworm) and pgvector, built from Debian's own source package
# (bookworm ships no pgvector binary; trixie's source, pgvector 0.8.x, builds against PostgreSQL 15).
# Only a deb-src line for trixie is added: a binary trixie line would pull in trixie's libc.
# Idempotent: does nothing when the vector extension is already installed. Needs root.
set -euo pipefail
PG=15
EXT_DIR=/usr/share/postgresql/$PG/extension
if [ -f "$EXT_DIR/vector.control" ] && [ -x /usr/lib/postgresql/$PG/bin/initdb ]; then
  echo "postgresql-$PG with pgvector is already installed"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
SRC=/etc/apt/sources.list.d/trixie-src.sources
if [ ! -f "$SRC" ]; then
  cat > "$SRC" <<'SOURCES'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
fi
apt-get update -qq
apt-get install -y -qq -t bookworm postgresql-$PG postgresql-server-dev-$PG dpkg-dev >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get source --download-only pgvector >/dev/null
dpkg-source -x pgvector_*.dsc src >/dev/null
cd src
make -s with_llvm=no PG_CONFIG=/usr/lib/postgresql/$PG/bin/pg_config >/dev/null
make -s with_llvm=no PG_CONFIG=/usr/lib/postgresql/$PG/bin/pg_config install >/dev/null
echo "installed pgvector $(sed -n "s/^default_version = '\(.*\)'/\1/p" "$EXT_DIR/vector.control") for PostgreSQL $PG"
