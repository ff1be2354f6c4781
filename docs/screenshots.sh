#!/usr/bin/env bash
# Re-takes every screenshot in docs/ under a virtual X display (Debian's xvfb), each from a fresh
# settings file and a fresh data folder, so what they show is a first launch. Run from the
# repository root with the venv active: bash docs/screenshots.sh [probe|compare|train]...
set -euo pipefail
cd "$(dirname "$0")/.."
which xvfb-run >/dev/null || { echo "needs xvfb-run (apt-get install xvfb xauth)"; exit 2; }
PY=${PYTHON:-python}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
n=0
shot() {  # shot WIDTHxHEIGHT OUT.png ARGS... : one window, one screenshot
  local size=$1 out=$2; shift 2
  n=$((n + 1))
  XDG_DATA_HOME="$scratch/data$n" xvfb-run -a -s "-screen 0 ${size}x24" \
    "$PY" main.py --size "$size" --settings "$scratch/s$n.ini" --screenshot "$out" "$@"
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
