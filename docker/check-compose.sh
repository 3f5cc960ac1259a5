#!/usr/bin/env bash
# Validates docker-compose.yml with a real Compose parser; no Docker engine needed.
#
#   docker/check-compose.sh [path/to/docker-compose.yml]
#
# Uses `docker-compose` (v1, e.g. Debian's 1.29) or `docker compose` (v2 plugin), whichever
# works. With neither, as root on a machine with apt-get, it installs Debian's docker-compose.
# Checks: `config -q` for the default profile, for `--profile test` and for `--profile cluster`,
# then that every service except `test` has an enabled healthcheck, and (with PyYAML) that every
# bind-mounted file or directory exists, that every JSON file in a bind-mounted directory (Grafana
# dashboards) parses, and that the `cluster` profile is well formed: its redis-server nodes run with
# cluster mode on, one password (requirepass = masterauth) and their service name as announced
# host name; its one-shot job runs `redis-cli --cluster create` on exactly those nodes, with that
# password, once they are healthy; every app given REDIS_CLUSTER_NODES names exactly those nodes,
# has that password as REDIS_PASSWORD and waits for the job to complete; and no service outside the
# profile needs one inside it (a plain `up` starts none of them).
# Prints one line on success; exits non-zero on failure.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
compose_file="${1:-$repo_root/docker-compose.yml}"
[[ -f "$compose_file" ]] || { echo "check-compose: $compose_file not found" >&2; exit 1; }
compose_file="$(cd "$(dirname "$compose_file")" && pwd)/$(basename "$compose_file")"

fail() { echo "check-compose: $*" >&2; exit 1; }

# --- find (or install) a Compose implementation ------------------------------------------------
compose=()
find_compose() {
  if command -v docker-compose >/dev/null 2>&1 && docker-compose version >/dev/null 2>&1; then
    compose=(docker-compose)
  elif command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
  fi
}
find_compose
if [[ ${#compose[@]} -eq 0 ]]; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log="$(mktemp)"
    if ! (export DEBIAN_FRONTEND=noninteractive
          apt-get update -qq && apt-get install -y -qq docker-compose) >"$log" 2>&1; then
      cat "$log" >&2
      rm -f "$log"
      fail "installing Debian's docker-compose failed"
    fi
    rm -f "$log"
    find_compose
  fi
  [[ ${#compose[@]} -gt 0 ]] ||
    fail "no Compose found: install docker-compose (apt-get install docker-compose) or the docker compose plugin"
fi
version="$("${compose[@]}" version --short 2>/dev/null || "${compose[@]}" version 2>/dev/null | head -n1)"

# Run from the file's directory so a `.env` beside it is read, as `up` would read it.
run_compose() { (cd "$(dirname "$compose_file")" && "${compose[@]}" -f "$compose_file" "$@"); }

# --- syntax and schema -------------------------------------------------------------------------
run_compose config -q || fail "\`${compose[*]} config -q\` rejected $compose_file"
checked="config -q"
profile_ok=false
help_text="$("${compose[@]}" --help 2>&1 || true)"   # captured first: grep -q + pipefail = SIGPIPE
if grep -q -- '--profile' <<<"$help_text"; then
  profile_ok=true
  for profile in test cluster; do
    run_compose --profile "$profile" config -q ||
      fail "\`${compose[*]} --profile $profile config -q\` rejected $compose_file"
    checked+=", --profile $profile config -q"
  done
fi

# --- every service but `test` has a healthcheck -------------------------------------------------
# Prefer the normalized model (all profiles enabled); fall back to the file itself.
if $profile_ok; then
  model="$(run_compose --profile test --profile cluster config)" || fail "could not render the compose model"
else
  model="$(cat "$compose_file")"
fi

python_with_yaml=""
for py in /usr/bin/python3 python3; do
  if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import yaml' >/dev/null 2>&1; then
    python_with_yaml="$py"
    break
  fi
done

if [[ -n "$python_with_yaml" ]]; then
  summary="$(printf '%s' "$model" | "$python_with_yaml" -c '
import glob, json, os, re, sys, yaml
doc = yaml.safe_load(sys.stdin) or {}
services = doc.get("services") or {}
if not services:
    sys.exit("no services found")
missing = []
for name, svc in services.items():
    if name == "test":
        continue
    hc = (svc or {}).get("healthcheck") or {}
    if hc.get("disable") or not hc.get("test") or hc.get("test") == ["NONE"]:
        missing.append(name)
if missing:
    sys.exit("services without a healthcheck: " + ", ".join(sorted(missing)))
# Bind mounts: compose creates a missing source as an empty directory, which hides the mistake.
os.chdir(os.path.dirname(sys.argv[1]))
mounts = 0
for name, svc in services.items():
    for volume in (svc or {}).get("volumes") or []:
        if isinstance(volume, dict):
            source = volume.get("source") if volume.get("type") == "bind" else None
        else:
            source = volume.split(":")[0] if volume.startswith((".", "/", "~")) else None
        if not source:
            continue
        source = os.path.expanduser(source)
        if not os.path.exists(source):
            sys.exit(f"{name}: bind-mount source {source} does not exist")
        mounts += 1
        for path in glob.glob(os.path.join(source, "**", "*.json"), recursive=True) if os.path.isdir(source) else []:
            try:
                json.load(open(path, encoding="utf-8"))
            except ValueError as error:
                sys.exit(f"{name}: {path} is not valid JSON: {error}")

# --- the cluster profile ---
def command_of(svc):
    command = (svc or {}).get("command") or []
    return command.split() if isinstance(command, str) else [str(arg) for arg in command]
def flag(args, name):  # redis-server: the last value wins
    at = max((i for i, arg in enumerate(args) if arg == name), default=-1)
    return args[at + 1] if 0 <= at < len(args) - 1 else None
def env_of(svc):
    env = (svc or {}).get("environment") or {}
    if isinstance(env, list):
        env = dict(line.split("=", 1) if "=" in line else (line, None) for line in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}
def deps_of(svc):
    deps = (svc or {}).get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (dep or {}).get("condition", "service_started") for name, dep in deps.items()}
def names(items):
    return ", ".join(sorted(items))
def in_cluster(svc):
    return "cluster" in ((svc or {}).get("profiles") or [])
cluster = {name: svc for name, svc in services.items() if in_cluster(svc)}
if not cluster:
    sys.exit("no service in the cluster profile")
nodes = {name: command_of(svc) for name, svc in cluster.items() if command_of(svc)[:1] == ["redis-server"]}
problems = []
addresses, passwords = set(), set()
for name, args in sorted(nodes.items()):
    if flag(args, "--cluster-enabled") != "yes":
        problems.append(f"{name}: no --cluster-enabled yes")
    if not flag(args, "--requirepass"):
        problems.append(f"{name}: no --requirepass")
    elif flag(args, "--masterauth") != flag(args, "--requirepass"):
        problems.append(f"{name}: --masterauth is not its --requirepass (replicas could not sync)")
    passwords.add(flag(args, "--requirepass"))
    if flag(args, "--cluster-announce-hostname") != name or flag(args, "--cluster-preferred-endpoint-type") != "hostname":
        problems.append(f"{name}: must announce its service name (--cluster-announce-hostname {name} "
                        "--cluster-preferred-endpoint-type hostname): other containers cannot reach it otherwise")
    addresses.add(name + ":" + (flag(args, "--port") or "6379"))
if len(passwords) > 1:
    problems.append("the cluster nodes have different passwords")
password = next(iter(passwords), None)
jobs = {name: " ".join(command_of(svc)) for name, svc in cluster.items() if re.search(r"--cluster\s+create\b", " ".join(command_of(svc)))}
if len(jobs) != 1:
    problems.append(f"the cluster profile needs exactly one service running redis-cli --cluster create, not {len(jobs)}")
replicas = 0
for job, text in jobs.items():
    created = re.search(r"--cluster\s+create((?:\s+[^\s-]\S*)+)", text)
    named = set(created.group(1).split()) if created else set()
    if named != addresses:
        problems.append(f"{job}: --cluster create names {sorted(named)}, the nodes are {sorted(addresses)}")
    found = re.search(r"--cluster-replicas\s+(\d+)", text)
    replicas = int(found.group(1)) if found else 0
    if not found or "--cluster-yes" not in text.split():
        problems.append(f"{job}: needs --cluster-replicas N and --cluster-yes (nobody answers the prompt)")
    if env_of(cluster[job]).get("REDISCLI_AUTH") != password and f"-a {password}" not in text:
        problems.append(f"{job}: does not authenticate with the nodes password (REDISCLI_AUTH)")
    waits = deps_of(cluster[job])
    unwaited = sorted(node for node in nodes if waits.get(node) != "service_healthy")
    if unwaited:
        problems.append(f"{job}: does not wait for these nodes to be healthy: {names(unwaited)}")
    if str(cluster[job].get("restart", "no")) != "no":
        problems.append(f"{job}: a one-shot job must not be restarted (restart: no)")
if len(nodes) < 3 * (1 + replicas):
    problems.append(f"{len(nodes)} cluster nodes: 3 primaries with {replicas} replica(s) each need {3 * (1 + replicas)}")
apps = {name: env_of(svc) for name, svc in services.items() if "REDIS_CLUSTER_NODES" in env_of(svc)}
if not apps:
    problems.append("no service is given REDIS_CLUSTER_NODES")
for name, env in sorted(apps.items()):
    seeds = {seed.strip() for seed in env["REDIS_CLUSTER_NODES"].split(",") if seed.strip()}
    if seeds != addresses:
        problems.append(f"{name}: REDIS_CLUSTER_NODES names {sorted(seeds)}, the nodes are {sorted(addresses)}")
    if env.get("REDIS_PASSWORD") != password:
        problems.append(f"{name}: REDIS_PASSWORD is not the cluster nodes password")
    if not any(deps_of(services[name]).get(job) == "service_completed_successfully" for job in jobs):
        problems.append(f"{name}: must wait for the cluster job {names(jobs)} (condition: service_completed_successfully)")
    if not in_cluster(services[name]):
        problems.append(f"{name}: uses the cluster but is not in the cluster profile")
for name, svc in services.items():
    if not (svc or {}).get("profiles"):
        needed = sorted(dep for dep in deps_of(svc) if dep in cluster)
        if needed:
            problems.append(f"{name} (default profile) depends on cluster-profile services: {names(needed)}")
if problems:
    sys.exit("cluster profile: " + "; ".join(problems))
print(f"{len(services)} services, {mounts} bind mounts present, cluster profile: {len(nodes)} nodes "
      f"({replicas} replica(s) per primary), {names(jobs)}, {len(apps)} apps")
' "$compose_file")" || fail "healthcheck / bind-mount / cluster profile check failed"
else
  # No YAML parser: a structural check on the raw file (two-space indented service names).
  summary="$(awk '
    /^services:[[:space:]]*$/ { in_s = 1; next }
    /^[^[:space:]#]/         { in_s = 0 }
    in_s && /^  [A-Za-z0-9_.-]+:[[:space:]]*$/ { name = $1; sub(/:$/, "", name); order[++n] = name; next }
    in_s && /^    healthcheck:/ { hc[name] = 1 }
    END {
      for (i = 1; i <= n; i++) if (order[i] != "test" && !hc[order[i]]) bad = bad " " order[i]
      if (n == 0) { print "no services found" > "/dev/stderr"; exit 1 }
      if (bad != "") { print "services without a healthcheck:" bad > "/dev/stderr"; exit 1 }
      print n " services"
    }' "$compose_file")" || fail "healthcheck check failed"
  summary+=", cluster profile checked by config -q only (no PyYAML)"
fi

echo "compose OK: $(basename "$compose_file") passes ${compose[*]} ${version} (${checked}); ${summary}; every service but test has a healthcheck"
