#!/usr/bin/env bash
# gpu-check.sh: the gotch backend's check on a CUDA machine, for a session
# that is lent the GPU machine (see the device tool's README: `status` says
# whether this task has one). It has two halves, because the GPU machine has
# PyTorch but no Go toolchain and no network:
#
#   scripts/gpu-check.sh prepare
#       HERE, on the development machine: downloads the torch wheel matching
#       the GPU machine's PyTorch (GPU_TORCH_VERSION, default 2.11.0), builds
#       a build-local gotch against it (C++20, the generated wrappers that no
#       longer compile replaced by stubs, libtorch_cuda linked) and compiles
#       the nn/gotch test binary into .cache/gpu/ (about 20 MB, stripped).
#       Takes about 5 minutes on 2 cores; no GPU needed.
#
#   scripts/gpu-check.sh run
#       THERE, through the device tool, carrying .cache/gpu:
#         run(command="scripts/gpu-check.sh run", carry=[".cache/gpu"], timeout_s=420)
#       Points the binary at python3's PyTorch libraries, then runs the CUDA
#       self-test, every nn/gotch test on cuda (conformance with gorgonia,
#       Adam step, leak test) and a short training benchmark on gorgonia,
#       gotch-cpu and gotch-cuda. Logs go to $OUT (or .cache/gpu/out).
#
# The binary is linked against the PyPI wheel of the same torch version; the
# C++ symbols it uses come from libtorch_cpu/libc10, which are the same in
# every CUDA variant of one release, and libtorch_cuda is only needed for
# its kernel registrations. A different torch version on the GPU machine
# means a different C++ ABI: rerun prepare with GPU_TORCH_VERSION set to it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

GPU_TORCH_VERSION=${GPU_TORCH_VERSION:-2.11.0}
gpu=$root/.cache/gpu

# Functions of gotch v0.9.1's generated C++ layer that do not compile
# against libtorch >= 2.10 (removed or changed in ATen); they are replaced
# by stubs that raise an error. nn/gotch uses none of them.
GPU_GOTCH_STUBS=${GPU_GOTCH_STUBS:-"atg__cslt_sparse_mm atg__scaled_mm atg__scaled_mm_out atg_align_as atg_align_tensors atg_cholesky atg_cholesky_out atg_qr atg_qr_q"}

prepare() {
	local tdir=.cache/libtorch-$GPU_TORCH_VERSION gdir=.cache/gotch-$GPU_TORCH_VERSION
	TORCH_VERSION=$GPU_TORCH_VERSION TORCH_CUDA=link GOTCH_CXXSTD=c++20 \
		GOTCH_STUBS="$GPU_GOTCH_STUBS" TORCH_DIR=$tdir GOTCH_DIR=$gdir \
		TORCH_WHEELS=.cache/torch-$GPU_TORCH_VERSION scripts/torch-install.sh
	mkdir -p "$gpu"
	GOWORK=$root/$gdir/go.work nice -n 10 go test -c -tags gotch -ldflags='-s -w' \
		-o "$gpu/gotch.test" ./nn/gotch/
	echo "$GPU_TORCH_VERSION" >"$gpu/torch-version"
	ls -l "$gpu"
	echo "gpu-check: prepared; now run 'scripts/gpu-check.sh run' on the GPU machine with carry [\".cache/gpu\"]"
}

run() {
	[ -x "$gpu/gotch.test" ] || { echo "gpu-check: $gpu/gotch.test missing: run 'scripts/gpu-check.sh prepare' first and carry .cache/gpu"; exit 1; }
	nvidia-smi -L || true
	local tlib tver want
	tlib=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
	tver=$(python3 -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())')
	want=$(cat "$gpu/torch-version")
	echo "gpu-check: python3's torch: $tver in $tlib; binary built against $want"
	case $tver in
	"$want"*) ;;
	*) echo "gpu-check: WARNING: torch version differs from the one the binary was built against" ;;
	esac
	export LD_LIBRARY_PATH=$tlib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
	local rc=0
	echo "== tests on cuda"
	ARBENCH_GOTCH_DEVICE=cuda "$gpu/gotch.test" -test.v -test.count=1 -test.timeout=5m || rc=1
	echo "== conformance on cpu (same binary)"
	ARBENCH_GOTCH_DEVICE=cpu "$gpu/gotch.test" -test.v -test.count=1 -test.run 'Plugins' -test.timeout=2m || rc=1
	echo "== training benchmark (8x64 byte batch, default plugin sizes)"
	for dev in cpu cuda; do
		ARBENCH_GOTCH_DEVICE=$dev "$gpu/gotch.test" -test.run '^$' -test.bench "TrainStep/.*/gotch" \
			-test.benchtime 20x -test.timeout=3m || rc=1
	done
	"$gpu/gotch.test" -test.run '^$' -test.bench "TrainStep/.*/gorgonia" -test.benchtime 5x -test.timeout=3m || rc=1
	echo "gpu-check: exit $rc"
	return $rc
}

case ${1:-} in
prepare) prepare ;;
run)
	out=${OUT:-$gpu/out}
	mkdir -p "$out"
	run 2>&1 | tee "$out/gpu-check.log"
	exit "${PIPESTATUS[0]}"
	;;
*)
	echo "usage: scripts/gpu-check.sh prepare|run (see the comment at the top)" >&2
	exit 2
	;;
esac
