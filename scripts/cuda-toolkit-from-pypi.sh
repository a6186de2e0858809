#!/usr/bin/env bash
# Makes a CUDA 13.0 build root from NVIDIA's PyPI wheels, for building `r2r --features cuda` on a machine
# with no CUDA toolkit and no GPU (the binary then runs on a GPU machine with a CUDA 13 driver):
# nvcc + crt + nvvm (cicc, libdevice) + cccl headers, cudart, nvrtc, cublas(Lt), curand, unversioned .so
# links for the linker, and a stub libcuda.so (SONAME libcuda.so.1, every cu* symbol that cudarc binds)
# in lib/stubs, since the driver library is not on PyPI. 13.0 matches driver 580, which must be able to
# JIT the PTX that candle's kernels are compiled to.
#
#   scripts/cuda-toolkit-from-pypi.sh DIR     (then run the build command it prints)
set -euo pipefail

root=$(realpath -m "${1:?usage: cuda-toolkit-from-pypi.sh DIR}")
wheels=$root.wheels
mkdir -p "$wheels" "$root"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d "$wheels" \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-crt==13.0.*" "nvidia-nvvm==13.0.*" "nvidia-cuda-cccl==13.0.*" \
    "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-nvrtc==13.0.*" "nvidia-cublas==13.0.*" "nvidia-curand==10.4.*"
unpacked=$wheels/x
for w in "$wheels"/*.whl; do unzip -q -o "$w" -d "$unpacked"; done
cp -a "$unpacked"/nvidia/cu13/. "$root"/
cd "$root/lib"
for lib in libcublas libcublasLt libcudart libnvrtc; do ln -sf $lib.so.13 $lib.so; done
ln -sf libcurand.so.10 libcurand.so

# Stub driver library: cudarc (feature dynamic-linking) links -lcuda; the real libcuda.so.1 is the driver's.
cudarc=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.* | sort | tail -1)
mkdir -p stubs
grep -oP '^pub unsafe fn \Kcu\w+(?=\()' "$cudarc/src/driver/sys/mod.rs" | sort -u | awk '{print "int " $1 "(void) { return 999; }"}' > stubs/cuda_stub.c
gcc -shared -fPIC -o stubs/libcuda.so -Wl,-soname,libcuda.so.1 stubs/cuda_stub.c
"$root/bin/nvcc" --version | tail -2
cat <<EOF
build with:
  PATH=$root/bin:\$PATH CUDA_ROOT=$root CUDA_PATH=$root CUDA_HOME=$root CUDA_COMPUTE_CAP=90 \\
  CARGO_TARGET_DIR=target-cuda cargo build --release --no-default-features --features cuda --bin r2r
EOF
