#!/usr/bin/env bash
# Prepares the peer side of `npm run bench -- peers` from a fresh machine, outside the repository:
#   - node-llama-cpp@3.21.1 (its prebuilt llama.cpp CPU build) in $PEERS/nlc — never a dependency of qwenvl
#   - llama.cpp's source from that package's git bundle, with llama-quantize and llama-mtmd-cli built (CPU only)
#   - random-weight GGUFs with the Qwen2-VL-2B shapes: language model F16/BF16/Q8_0/Q4_0 and the vision mmproj (F16)
#   - a random-weight Qwen2-VL-2B checkpoint folder (bf16 safetensors, real shapes) for qwenvl
# Idempotent: each step is skipped when its output exists. Needs ~25 GB of disk, node/npm, cmake, a C++
# compiler, git and python3 with numpy.
# usage: bench/peers/prepare.sh [PEERS_DIR]   (default /work/peers; SHARED=/work/shared, JOBS=2)
set -euo pipefail
PEERS="${1:-${PEERS_DIR:-/work/peers}}"
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
SHARED="${SHARED:-$REPO/../shared}"
[ -d "$SHARED/bench-peers" ] || SHARED=/work/shared
TOOLS="$SHARED/bench-peers"
CONFIG="$SHARED/model-configs/Qwen__Qwen2-VL-2B-Instruct/config.reconstructed.json"
FIXTURE="$REPO/test/fixtures/qwen2-vl/checkpoint"
# the repository stores the fixture's tokenizer.json split; write it (as the tests' setup does)
if [ ! -f "$FIXTURE/tokenizer.json" ]; then
  (cd "$REPO" && npx tsx -e "import('./test/helpers/fixtures.ts').then((m) => m.materializeTokenizers())") || true
fi
[ -f "$FIXTURE/tokenizer.json" ] || FIXTURE="$SHARED/fixtures/qwen2-vl/checkpoint"
JOBS="${JOBS:-2}"
mkdir -p "$PEERS"
cd "$PEERS"
step() { echo "== $*" >&2; }

if [ ! -f nlc/node_modules/node-llama-cpp/package.json ]; then
  step "node-llama-cpp@3.21.1 -> $PEERS/nlc"
  mkdir -p nlc && (cd nlc && { [ -f package.json ] || npm init -y >/dev/null; } && npm i -E node-llama-cpp@3.21.1)
fi
cp "$TOOLS/nlc_bench_json.mjs" nlc/

if [ ! -d llama.cpp/.git ]; then
  step "llama.cpp source from node-llama-cpp's git bundle"
  git clone -q nlc/node_modules/node-llama-cpp/llama/gitRelease.bundle llama.cpp
fi
if [ ! -x llama.cpp/build/bin/llama-quantize ] || [ ! -x llama.cpp/build/bin/llama-mtmd-cli ]; then
  step "cmake build of llama-quantize and llama-mtmd-cli (CPU only, -j$JOBS)"
  cmake -S llama.cpp -B llama.cpp/build -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=OFF -DGGML_VULKAN=OFF \
    -DGGML_METAL=OFF -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_SERVER=OFF >/dev/null
  nice -n 5 cmake --build llama.cpp/build -j"$JOBS" --target llama-quantize llama-mtmd-cli
fi

mkdir -p gguf
export PYTHONPATH="$PEERS/llama.cpp/gguf-py${PYTHONPATH:+:$PYTHONPATH}"
if [ ! -f gguf/qwen2vl-2b-F16.gguf ]; then
  step "language model GGUF (F16, Qwen2-VL-2B shapes)"
  python3 "$TOOLS/make_random_gguf.py" lm qwen2vl-2b gguf/qwen2vl-2b-F16.gguf.tmp 2>/dev/null
  mv gguf/qwen2vl-2b-F16.gguf.tmp gguf/qwen2vl-2b-F16.gguf
fi
if [ ! -f gguf/qwen2vl-2b-mmproj-F16.gguf ]; then
  step "vision tower mmproj GGUF (F16)"
  python3 "$TOOLS/make_random_gguf.py" vit qwen2vl-2b gguf/qwen2vl-2b-mmproj-F16.gguf.tmp 2>/dev/null
  mv gguf/qwen2vl-2b-mmproj-F16.gguf.tmp gguf/qwen2vl-2b-mmproj-F16.gguf
fi
for q in BF16 Q8_0 Q4_0; do
  if [ ! -f "gguf/qwen2vl-2b-$q.gguf" ]; then
    step "llama-quantize F16 -> $q"
    nice -n 5 llama.cpp/build/bin/llama-quantize gguf/qwen2vl-2b-F16.gguf "gguf/qwen2vl-2b-$q.gguf.tmp" "$q" "$JOBS" >/dev/null 2>&1
    mv "gguf/qwen2vl-2b-$q.gguf.tmp" "gguf/qwen2vl-2b-$q.gguf"
  fi
done
# a test image for llama-mtmd-cli is written by the bench itself at the size it times

if [ ! -f qwen2vl-2b-checkpoint/model.safetensors ]; then
  step "Qwen2-VL-2B-shaped checkpoint folder for qwenvl"
  python3 "$TOOLS/make_qwen2vl_checkpoint.py" "$CONFIG" "$FIXTURE" qwen2vl-2b-checkpoint.tmp
  mv qwen2vl-2b-checkpoint.tmp qwen2vl-2b-checkpoint
fi
step "done: $PEERS"
ls -la gguf qwen2vl-2b-checkpoint >&2
