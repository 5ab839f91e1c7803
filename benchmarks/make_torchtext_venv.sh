#!/usr/bin/env bash
# Build, once, the torchtext reference venv that the comparison scripts run against.
#
#   bash benchmarks/make_torchtext_venv.sh            # -> ${TORCHTEXT_VENV:-/work/venvs/torchtext}
#   TORCHTEXT_VENV=/tmp/tt bash benchmarks/make_torchtext_venv.sh
#
# It lives OUTSIDE the project (several GB: torch 2.3.1 from PyPI pulls its CUDA libraries) and is
# never a textpipe dependency: textpipe itself must not import torchtext. torchtext 0.18.0 is the
# last release and only loads on torch 2.3.x; its datasets need torchdata's datapipes, which torchdata
# 0.7.1 still ships (installed without its torch pin, which would downgrade torch; the datapipes are
# pure Python). numpy stays < 2 because torch 2.3.1 was built against numpy 1.x.
#
# Re-running is cheap: an existing venv that already imports torchtext is left as it is.
set -euo pipefail

VENV="${TORCHTEXT_VENV:-/work/venvs/torchtext}"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3

check() {
    "$VENV/bin/python" - <<'PY'
import torch, torchtext
from torchtext.datasets import AG_NEWS  # noqa: F401  (needs torchdata)
from torchtext.data.utils import get_tokenizer
assert torch.__version__.startswith("2.3.1"), torch.__version__
assert torchtext.__version__.startswith("0.18.0"), torchtext.__version__
print("torch", torch.__version__, "torchtext", torchtext.__version__,
      get_tokenizer("basic_english")("It's OK."))
PY
}

if [ -x "$VENV/bin/python" ] && check 2>/dev/null; then
    echo "torchtext venv already ready at $VENV"
    exit 0
fi

mkdir -p "$(dirname "$VENV")"
"$PY" -m venv "$VENV"
# Ignore this machine's pip configuration (a local wheel cache and a cap on torch's version): the
# reference versions come from PyPI as a user would get them.
export PIP_CONFIG_FILE=/dev/null PIP_CONSTRAINT= PIP_FIND_LINKS= PIP_DISABLE_PIP_VERSION_CHECK=1
PIP=("$VENV/bin/python" -m pip install --no-input --progress-bar off)
"${PIP[@]}" --upgrade pip
"${PIP[@]}" "torch==2.3.1" "torchtext==0.18.0" "numpy<2" requests
"${PIP[@]}" --no-deps "torchdata==0.7.1"
"${PIP[@]}" "urllib3>=1.25" "portalocker>=2.0.0"  # torchdata's on-disk cache needs it
check
echo "torchtext venv ready at $VENV"
