#!/usr/bin/env bash
# A/B on one machine, minutes apart: the 10k reconcile cases and the kill-switch read at
# REV and at the working tree, alternated ROUNDS times (the host's speed drifts, so
# figures from different runs or hosts do not compare; see RESULTS.md).
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/ab bench/ab.sh REV [ROUNDS]
set -euo pipefail
rev=${1:?usage: bench/ab.sh REV [ROUNDS]}
rounds=${2:-2}
here=$(cd "$(dirname "$0")/.." && pwd)
py="$here/.venv/bin/python"
old=$(mktemp -d)
trap 'git -C "$here" worktree remove --force "$old" >/dev/null 2>&1 || true' EXIT
git -C "$here" worktree add -f -q --detach "$old" "$rev"
for round in $(seq "$rounds"); do
  for tree in "$old" "$here"; do
    label=$([ "$tree" = "$here" ] && echo "working tree" || echo "$rev")
    echo "== $label, round $round"
    (cd "$tree" && "$py" bench/reconcile.py --orders 10000 --desync 0.1 --desync 0 --passes 5)
    (cd "$tree" && "$py" "$here/bench/ab_killswitch.py" "$tree")
  done
done
