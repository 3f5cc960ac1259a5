#!/usr/bin/env bash
# Validates docker-compose.yml with a real Compose parser; no Docker engine needed.
#
#   docker/check-compose.sh [path/to/docker-compose.yml]
#
# Uses `docker-compose` (v1, e.g. Debian's 1.29) or `docker compose` (v2 plugin), whichever
# works. With neither, as root on a machine with apt-get, it installs Debian's docker-compose.
# Checks: `config -q` for the default profile and for `--profile test`, then that every service
# except `test` has an enabled healthcheck, and (with PyYAML) that every bind-mounted file or
# directory exists and every JSON file in a bind-mounted directory (Grafana dashboards) parses.
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
  run_compose --profile test config -q || fail "\`${compose[*]} --profile test config -q\` rejected $compose_file"
  checked+=", --profile test config -q"
fi

# --- every service but `test` has a healthcheck -------------------------------------------------
# Prefer the normalized model (all profiles enabled); fall back to the file itself.
if $profile_ok; then
  model="$(run_compose --profile test config)" || fail "could not render the compose model"
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
import glob, json, os, sys, yaml
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
print(f"{len(services)} services, {mounts} bind mounts present")
' "$compose_file")" || fail "healthcheck / bind-mount check failed"
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
fi

echo "compose OK: $(basename "$compose_file") passes ${compose[*]} ${version} (${checked}); ${summary}; every service but test has a healthcheck"
