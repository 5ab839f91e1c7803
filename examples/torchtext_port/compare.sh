#!/usr/bin/env bash
# Run each torchtext script of this folder with torchtext 0.18 and its port with textpipe, on the same seeds
# and the same local AG_NEWS files, and compare what they print (accuracies and the prediction).
#
#   bash examples/torchtext_port/compare.sh     # seeds 0 1 2 (SEEDS="0" for one), both scripts (NAMES=bigram for one)
#
# Needs the torchtext reference venv (bash benchmarks/make_torchtext_venv.sh, at $TORCHTEXT_VENV or
# /work/venvs/torchtext) and the AG_NEWS files in $AG_NEWS_DATA (default ../shared/data/ag_news).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
TT_PY="${TORCHTEXT_VENV:-/work/venvs/torchtext}/bin/python"
DATA="${AG_NEWS_DATA:-$REPO/../shared/data/ag_news}"
SEEDS="${SEEDS:-0 1 2}"
NAMES="${NAMES:-text_classification bigram}"
WORK=$(mktemp -d /tmp/textpipe-compare.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# torchtext's layout: root/datasets/AG_NEWS/{train,test}.csv
mkdir -p "$WORK/root/datasets/AG_NEWS"
for split in train test; do
    if [ -f "$DATA/$split.csv" ]; then cp "$DATA/$split.csv" "$WORK/root/datasets/AG_NEWS/"
    else gzip -dc "$DATA/$split.csv.gz" > "$WORK/root/datasets/AG_NEWS/$split.csv"; fi
done

status=0
for name in $NAMES; do
    original="$HERE/${name}_torchtext.py"
    port="$HERE/${name}_textpipe.py"
    # The whole port is this sed line: the checked-in port must be exactly its output.
    sed s/torchtext/textpipe/g "$original" | cmp - "$port"
    for seed in $SEEDS; do
        SEED=$seed AG_NEWS_ROOT="$WORK/root" "$TT_PY" "$HERE/run_torchtext.py" "$original" > "$WORK/tt.log"
        SEED=$seed AG_NEWS_ROOT="$WORK/root" PYTHONPATH="$REPO" python3 "$port" > "$WORK/tp.log"
        for side in tt tp; do  # keep what must agree: accuracies and the prediction, without timings
            grep -E "accuracy|This is a" "$WORK/$side.log" | sed -E 's/time:? *[0-9.]+ ?s//' > "$WORK/$side.out"
        done
        if cmp -s "$WORK/tt.out" "$WORK/tp.out"; then verdict="identical"; else verdict="DIFFERENT"; status=1; fi
        echo "$name seed $seed: torchtext [$(grep -o 'test accuracy *[0-9.]*' "$WORK/tt.out")]" \
             "textpipe [$(grep -o 'test accuracy *[0-9.]*' "$WORK/tp.out")] -> all accuracy lines $verdict"
        [ "$verdict" = identical ] || diff "$WORK/tt.out" "$WORK/tp.out" || true
    done
done
exit $status
