#!/usr/bin/env bash
# What a CI pipeline runs to manage Switchboard from a repository of YAML files:
#   on a pull request:  examples/ci-pipeline.sh plan    (shows the diff; fails the job on errors)
#   on merge to main:   examples/ci-pipeline.sh apply   (applies atomically, waits for the balancers)
# Needs SWITCHBOARD_URL (the admin API) and SWITCHBOARD_TOKEN (a token with the write scope, e.g.
#   curl -X POST $SWITCHBOARD_URL/v1/tokens -H "Authorization: Bearer $ADMIN" -d '{"name":"ci","scopes":["write"]}').
# SELECT_TAG (e.g. team=platform) limits the run to the resources of one team.
set -euo pipefail

CONFIG_DIR=${CONFIG_DIR:-examples/switchboard}
SWITCHBOARD=${SWITCHBOARD:-npx switchboard}
: "${SWITCHBOARD_URL:?set SWITCHBOARD_URL to the admin API, e.g. http://127.0.0.1:8080}"
: "${SWITCHBOARD_TOKEN:?set SWITCHBOARD_TOKEN to a token with the write scope}"
tag_args=()
if [[ -n "${SELECT_TAG:-}" ]]; then tag_args=(--select-tag "$SELECT_TAG"); fi

case "${1:-plan}" in
  plan)
    # Exit 0: nothing to change; 2: changes to review; 1: invalid files or an API error.
    set +e
    $SWITCHBOARD plan -f "$CONFIG_DIR" "${tag_args[@]}" | tee plan.txt   # plan.txt: for the pull request comment
    status=${PIPESTATUS[0]}
    set -e
    case $status in
      0) echo "Switchboard: no changes." ;;
      2) echo "Switchboard: the plan above will be applied on merge." ;;
      *) exit "$status" ;;
    esac
    ;;
  apply)
    $SWITCHBOARD apply -f "$CONFIG_DIR" "${tag_args[@]}" --auto-approve --wait-timeout 120
    ;;
  *)
    echo "usage: $0 plan|apply" >&2
    exit 64
    ;;
esac
