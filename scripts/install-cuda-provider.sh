#!/usr/bin/env bash
# Installs a CUDA-capable onnxruntime-node into its own prefix, leaving package-lock.json and `npm ci` as they are.
#
#   bash scripts/install-cuda-provider.sh [PREFIX]          # default .cache/ort-cuda
#   ORT_NODE_PREFIX=.cache/ort-cuda EXECUTION_PROVIDER=cuda npm start
#
# Why a prefix: onnxruntime-node's own install script downloads its CUDA libraries from a host that is not
# reachable everywhere (and is denied in allowScripts). npm has com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9
# (MIT, https://github.com/asus4/onnxruntime-unity; the libraries inside are Microsoft's ONNX Runtime, MIT), whose
# libonnxruntime_providers_cuda.so is built for ONNX Runtime 1.29.0 against CUDA 13 and cuDNN 9. A provider library
# only loads beside the same ONNX Runtime version, so this installs onnxruntime-node@1.29.0 (not the project's
# 1.30) into PREFIX and puts the provider libraries next to its libonnxruntime.so.1, where ONNX Runtime looks for them.
#
# The host needs: Linux x64, an NVIDIA driver for CUDA 13, and the CUDA 13 runtime libraries (libcudart, libcublas,
# libcublasLt, libcufft, libcurand) and cuDNN 9 (libcudnn*.so.9) on the loader path (ldconfig or LD_LIBRARY_PATH).
# Downloads about 290 MB (the provider package is 180 MB, onnxruntime-node 112 MB); the prefix takes about 700 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${1:-${ORT_NODE_PREFIX:-.cache/ort-cuda}}
ORT_VERSION=1.29.0
PROVIDER_PKG=com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "the CUDA provider package is for Linux x64 only (this is $(uname -s)-$(uname -m))" >&2
  exit 1
fi
mkdir -p "$PREFIX"
PREFIX=$(cd "$PREFIX" && pwd)
# its own package.json, so npm does not walk up to the project's and touch its lockfile
[ -f "$PREFIX/package.json" ] || echo '{"name":"align-search-ort-cuda","private":true}' > "$PREFIX/package.json"
# --ignore-scripts: onnxruntime-node's install script would try to download CUDA 12 libraries
npm install --prefix "$PREFIX" --ignore-scripts --no-audit --no-fund "onnxruntime-node@$ORT_VERSION"

BIN="$PREFIX/node_modules/onnxruntime-node/bin/napi-v6/linux/x64"
[ -f "$BIN/libonnxruntime.so.1" ] || { echo "no $BIN/libonnxruntime.so.1 after npm install" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# npm pack checks the tarball against the registry's integrity hash
(cd "$TMP" && npm pack --silent "$PROVIDER_PKG" > name.txt)
tar -xzf "$TMP/$(cat "$TMP/name.txt")" -C "$TMP" package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so package/Plugins/Linux/x64/libonnxruntime_providers_shared.so
cp "$TMP"/package/Plugins/Linux/x64/libonnxruntime_providers_{cuda,shared}.so "$BIN/"
echo "installed onnxruntime-node $ORT_VERSION with the CUDA provider into $PREFIX"
echo "missing CUDA/cuDNN libraries of the provider on this host (none listed = all found):"
ldd "$BIN/libonnxruntime_providers_cuda.so" | grep 'not found' || true
echo "use it with: ORT_NODE_PREFIX=$PREFIX EXECUTION_PROVIDER=cuda npm start   (or cuda,cpu to fall back to the CPU, logged)"
