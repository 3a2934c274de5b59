#!/usr/bin/env bash
# The GPU study: CIFAR-10 EfficientNet scaling study under KERAS_BACKEND=jax with mixed precision,
# on a lent GPU machine that has JAX but no TensorFlow (see bench/gpu/README.md).
#
#   bash bench/gpu/run.sh OUTDIR [extra `study scale` flags]
#
# Needs: .whl/ with keras (and its pure-Python needs missing there: namex, optree, rich...) when
# keras is not installed, and bench/gpu/data/cifar10.npz written beforehand on a machine with
# TensorFlow by `python -m keras_convnets.study data export cifar10 --out bench/gpu/data/cifar10.npz`.
set -euo pipefail
out=${1:?usage: run.sh OUTDIR [flags]}; shift || true
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if ! python3 -c "import keras" 2>/dev/null; then
  [ -d "$root/.whl" ] || { echo "keras is not installed and there is no .whl/ to install it from" >&2; exit 2; }
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$root"/.whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
# Each trial runs in its own process (keras_convnets/study/isolation.py) beside the study's, which
# builds models to match MACs: JAX's default of preallocating 75% of the GPU per process would let
# only the first of them start. Allocate on demand instead.
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
data=${GPU_STUDY_DATA:-$here/data/cifar10.npz}
[ -f "$data" ] || { echo "missing $data: export it first (see bench/gpu/README.md)" >&2; exit 2; }
mkdir -p "$out"
python3 -c "import jax; print('devices:', jax.devices())" | tee "$out/devices.txt"
python3 -m keras_convnets.study scale --config "$root/studies/cifar10_efficientnet.toml" \
  --dataset "npz:$data" --precision mixed_bfloat16 --out "$out/study" --overwrite "$@" 2>&1 | tee "$out/log.txt"
python3 -m keras_convnets.study report "$out/study"
