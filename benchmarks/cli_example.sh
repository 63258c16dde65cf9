#!/usr/bin/env bash
# The README's command-line example, as a new user runs it, on a plain and on a done-reading, potential-shaped model
# (four rooms 9x9, goal (1, 7), PPO 20k steps, seeds 0-2). About 3 minutes on one core.
#   bash benchmarks/cli_example.sh      -> benchmarks/results/cli_example/{plain,done_potential}_s{0,1,2}.json
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/results/cli_example"
rs="${REWARDSHARE:-rewardshare}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
cd "$work"
"$rs" collect --env-id rewardshare/GridGoal-FourRooms-v0 --task-id four_rooms-9x9/g1_7 --kind labels \
    --budget 2000 --out labels.npz --no-progress
"$rs" train-reward --data labels.npz --out model --no-progress
"$rs" train-reward --data labels.npz --out model_done --use-done --no-progress
for seed in 0 1 2; do
    "$rs" train-agent --reward model --timesteps 20000 --seed "$seed" --no-progress --force \
        --out "$out/plain_s$seed.json" | tail -1
    "$rs" train-agent --reward model_done --shaping potential --timesteps 20000 --seed "$seed" --no-progress --force \
        --out "$out/done_potential_s$seed.json" | tail -1
done
