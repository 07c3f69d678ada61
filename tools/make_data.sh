#!/usr/bin/env bash
# Regenerate the small LibSVM files in data/ that the shipped configs use.
# Usage (from anywhere): tools/make_data.sh            needs `sparsetrain` importable (pip install -e .)
# Each file is written by `sparsetrain gen-data`; eval splits are the tail of one generated file so
# that train and eval share the same true weights.
set -euo pipefail
cd "$(dirname "$0")/.."
st() { python -m sparsetrain.cli "$@"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The seed tutorial's data: 1000 x 100 CSR, density 0.01, y = X . [1..100]
st gen-data --rows 1000 --features 100 --density 0.01 --target arange --seed 0 --quiet \
    --out data/linreg.libsvm --force

# Binary classification: 3000 rows x 200 features, 10 non-zeros per row -> 2500 train + 500 eval
st gen-data --rows 3000 --features 200 --nnz-per-row 10 --task binary --target random --seed 1 --quiet \
    --out "$tmp/binary.libsvm"
head -n 2500 "$tmp/binary.libsvm" > data/binary.libsvm
tail -n 500 "$tmp/binary.libsvm" > data/binary_eval.libsvm
cp "$tmp/binary.libsvm.weights.npy" data/binary.weights.npy

# Multiclass: 3000 rows x 100 features, 8 non-zeros per row, 5 classes -> 2500 train + 500 eval
st gen-data --rows 3000 --features 100 --nnz-per-row 8 --task multiclass --classes 5 --target random \
    --seed 2 --quiet --out "$tmp/multiclass.libsvm"
head -n 2500 "$tmp/multiclass.libsvm" > data/multiclass.libsvm
tail -n 500 "$tmp/multiclass.libsvm" > data/multiclass_eval.libsvm
cp "$tmp/multiclass.libsvm.weights.npy" data/multiclass.weights.npy

# Criteo-like clicks: a TSV with a header, label + 13 integer + 26 categorical columns (zipf values over
# 100 per column), planted logistic model -> 5000 train + 500 eval rows (configs/criteo_like.yaml)
st gen-data --format csv --rows 5500 --task binary --numeric 13 --categorical 26 --cardinality zipf \
    --vocabulary 100 --seed 3 --quiet --out "$tmp/criteo_like.tsv"
head -n 5001 "$tmp/criteo_like.tsv" > data/criteo_like.tsv
{ head -n 1 "$tmp/criteo_like.tsv"; tail -n 500 "$tmp/criteo_like.tsv"; } > data/criteo_like_eval.tsv
cp "$tmp/criteo_like.tsv.model.npz" data/criteo_like.model.npz

ls -l data/
