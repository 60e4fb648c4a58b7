#!/usr/bin/env bash
# The figures the README uses to justify settings and defaults, each as mean ± std over seed replicates: every
# comparison is one `facepipe run` with --seeds N, then `facepipe exps` prints its rows (one per setting, the
# replicates grouped), with the commands that made them. The training seeds vary (pretext.seed and triarchy.seed
# together); the split stays fixed, so every arm is tested on the same pairs (the `default-splits` comparison varies
# the split too). Stages shared between comparisons come from the cache, so the whole set costs about
# 14 x 3 pipeline runs on a cold cache.
#
#   scripts/seed-figures.sh [--seeds N] [--config FILE]... [--only NAME]... [--md] [--jobs N] [--workspace DIR]
#   npm run figures:seeds -- --md                     # what the README's tables were made with
#   scripts/seed-figures.sh --config configs/tiny.yaml --seeds 2   # a rehearsal in minutes (figures mean nothing)
#
# Comparisons, in this order: default, pretext, init, flip, threshold, bn, width-depth, default-splits. The workspace (default: this
# checkout) needs pipelines/, configs/ and data/; its results/ gets the experiments seeds-<comparison>-<hash>.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cli=(node "$root/dist/src/cli/main.js")
seeds=3
configs=()
only=()
fmt=()
jobs=1
ws="$root"
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds="$2"; shift 2 ;;
    --config) configs+=(--config "$2"); shift 2 ;;
    --only) only+=("$2"); shift 2 ;;
    --md) fmt=(--md); shift ;;
    --jobs) jobs="$2"; shift 2 ;;
    --workspace) ws="$(cd "$2" && pwd)"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "seed-figures: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -f "$root/dist/src/cli/main.js" ] || { echo "seed-figures: build first (npm run build)" >&2; exit 2; }

# The command as one would type it: arguments with shell characters in single quotes.
show() {
  local out="\$" a
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./=,:+@%-]+$ ]]; then out+=" $a"; else out+=" '${a//\'/\'\\\'\'}'"; fi
  done
  echo "$out"
}

wanted() {
  [ ${#only[@]} -eq 0 ] && return 0
  local o
  for o in "${only[@]}"; do [ "$o" = "$1" ] && return 0; done
  return 1
}

# run NAME ARGS...: one facepipe run of experiments named seeds-NAME-<hash>, printed as it is run.
run() {
  local name="$1"
  shift
  local cmd=(facepipe run "${configs[@]}" --experiment "seeds-$name" --seeds "$seeds" --jobs "$jobs" "$@")
  show "${cmd[@]}"
  local t0=$SECONDS
  if ! "${cli[@]}" "${cmd[@]:1}" --progress plain >"$log/$name.log" 2>&1; then
    echo "seed-figures: the run failed; its output: $log/$name.log" >&2
    tail -20 "$log/$name.log" >&2
    exit 1
  fi
  echo "  ($((SECONDS - t0)) s)"
}

# table PATTERN COLUMNS: the rows of the experiments whose name matches PATTERN.
table() {
  local cmd=(facepipe exps --filter "experiment~^seeds-($1)-[0-9a-f]{6}\$" --columns "$2" --sort experiment "${fmt[@]}")
  show "${cmd[@]}"
  echo
  "${cli[@]}" "${cmd[@]:1}"
  echo
}

log="$ws/results/seed-figures"
mkdir -p "$log"
cd "$ws"
train=(--seed-stages pretext,triarchy)
figures=evaluate.accuracy,evaluate.accuracy_median,evaluate.auc,evaluate.eer
started=$SECONDS
echo "seed figures: $seeds seeds per setting${configs[*]:+, ${configs[*]}}; run logs in $log"
echo

if wanted default; then
  echo "## The default config (training seeds; the split fixed)"
  run default "${train[@]}"
  table default "pretext.heldout_pose,pretext.heldout_eyes,$figures,duration"
fi
if wanted pretext; then
  echo "## Pretext: the old default (3 epochs, flip 0.5, pose + expression) against the current one"
  run default "${train[@]}"
  run pretext-old "${train[@]}" --set pretext.epochs=3 --set pretext.augment.flip=0.5 --set 'pretext.attributes=[pose,expression]'
  table 'default|pretext-old' "pretext.attributes,pretext.epochs,pretext.augment.flip,pretext.heldout_pose,pretext.heldout_expression,pretext.heldout_eyes,evaluate.accuracy,evaluate.auc,duration"
fi
if wanted init; then
  echo "## Initialisation: pretext backbone or scratch"
  run init "${train[@]}" --sweep triarchy.init=pretext,scratch
  table init "triarchy.init,$figures"
fi
if wanted flip; then
  echo "## Mirror-image averaging at validation (checkpoint choice) and at evaluation"
  run flip "${train[@]}" --sweep triarchy.flip_average=true,false --sweep evaluate.flip_average=true,false
  table flip "triarchy.flip_average,evaluate.flip_average,$figures"
fi
if wanted threshold; then
  echo "## The threshold rule (threshold accuracy only: the median rule and AUC do not depend on it)"
  run threshold "${train[@]}" --sweep evaluate.threshold_rule=eer,accuracy
  table threshold "evaluate.threshold_rule,evaluate.accuracy,evaluate.val_accuracy"
fi
if wanted bn; then
  echo "## BatchNorm momentum of the Triarchy backbone, with and without re-estimated statistics"
  run bn "${train[@]}" --sweep triarchy.backbone.bn_momentum=0.9,0.99 --sweep triarchy.recalibrate_bn=false,true
  table bn "triarchy.backbone.bn_momentum,triarchy.recalibrate_bn,$figures"
fi
if wanted width-depth; then
  echo "## Width and depth (pretext and Triarchy backbones together)"
  run default "${train[@]}"
  run width1 "${train[@]}" --set pretext.backbone.width=1 --set triarchy.backbone.width=1
  run depth1 "${train[@]}" --set pretext.backbone.depth=1 --set triarchy.backbone.depth=1
  table 'default|width1|depth1' "triarchy.backbone.width,triarchy.backbone.depth,prune.params,$figures,duration"
fi
if wanted default-splits; then
  echo "## The default config, the split seed varying too (other test identities each time)"
  run default-splits
  table default-splits "split.seed,$figures"
fi
echo "seed figures done in $((SECONDS - started)) s"
