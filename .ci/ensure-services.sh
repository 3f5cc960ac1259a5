#!/usr/bin/env bash
# Makes sure the cache Redis and PostgreSQL the tests use answer on loopback: starts them
# when they are installed but stopped, installs them (Debian packages) when they are missing;
# also the redis-server binary and PyYAML that some tests use.
set -euo pipefail

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

wait_for() {
  local name=$1 check=$2
  for _ in $(seq 1 60); do "$check" && return 0; sleep 0.5; done
  echo "ensure-services: $name did not come up" >&2
  return 1
}

apt_install() {
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Some tests start throwaway redis-server processes on free ports, and the stack smoke test reads
# docker-compose.yml with PyYAML: both must be there even when Redis itself already runs.
command -v redis-server >/dev/null || apt_install redis-server redis-tools
python3 -c 'import yaml' 2>/dev/null || apt_install python3-yaml

if ! redis_up; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis redis_up
fi

if ! pg_up; then
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  cluster=$(ls /etc/postgresql | head -1)
  pg_ctlcluster --skip-systemctl-redirect "$cluster" main start || true
  wait_for PostgreSQL pg_up
fi

# The tests connect as postgres without a password and create one database per spec file.
psql -h 127.0.0.1 -U postgres -d postgres -tAc 'SELECT 1' >/dev/null 2>&1 || {
  echo "ensure-services: cannot connect to PostgreSQL as postgres on 127.0.0.1 (trust auth expected)" >&2
  exit 1
}
echo "ensure-services: Redis and PostgreSQL answer on 127.0.0.1"
