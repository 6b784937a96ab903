#!/usr/bin/env bash
# torch-install.sh: install libtorch from a PyPI torch wheel into a
# gitignored directory of the project and prepare a build-local copy of
# github.com/sugarme/gotch wired to it. Called by `make torch` (torch.mk);
# see nn/gotch/README.md for the layout and the reasons.
#
# Environment (all optional):
#   TORCH_VERSION  torch wheel version (default 2.1.2, the libtorch gotch
#                  v0.9.1's C++ layer was generated for)
#   TORCH_CUDA     0 (default): link libtorch_cpu + libc10 only; the CPU
#                  build then needs just the CUDA runtime and CUPTI shared
#                  libraries that libtorch_cpu.so names as DT_NEEDED.
#                  1: also link libtorch_cuda + libc10_cuda (with
#                  --no-as-needed, so their CUDA kernels register) and
#                  download every nvidia-*-cu12 wheel the torch wheel pins.
#   TORCH_DIR      where libtorch is unpacked (default .cache/libtorch)
#   GOTCH_DIR      where the gotch copy and go.work go (default .cache/gotch)
#   TORCH_WHEELS   where wheels are downloaded (default .cache/torch)
#   TORCH_LIB_ONLY 1: stop after unpacking libtorch (for experiments)
#
# Nothing outside the project directory is written except what pip and the
# Go module cache do on their own (downloads). The Go module cache's copy of
# gotch is only read.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)

TORCH_VERSION=${TORCH_VERSION:-2.1.2}
TORCH_CUDA=${TORCH_CUDA:-0}
TORCH_DIR=${TORCH_DIR:-.cache/libtorch}
GOTCH_DIR=${GOTCH_DIR:-.cache/gotch}
TORCH_WHEELS=${TORCH_WHEELS:-.cache/torch}
GOTCH_VERSION=v0.9.1
PY=${PYTHON:-python3}

abs() { case $1 in /*) echo "$1" ;; *) echo "$root/$1" ;; esac; }
TORCH_DIR=$(abs "$TORCH_DIR")
GOTCH_DIR=$(abs "$GOTCH_DIR")
TORCH_WHEELS=$(abs "$TORCH_WHEELS")

log() { echo "torch-install: $*" >&2; }

# The wheel's libtorch is the same for every CPython version; pin the
# platform tags so the download does not depend on the local Python.
pipdl() {
	"$PY" -m pip download --quiet --no-deps --only-binary=:all: \
		--python-version 3.11 --implementation cp --abi cp311 \
		--platform manylinux1_x86_64 --platform manylinux2014_x86_64 \
		--platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
		-d "$TORCH_WHEELS" "$@"
}

mkdir -p "$TORCH_WHEELS"
wheel=$(ls "$TORCH_WHEELS"/torch-"$TORCH_VERSION"-cp311-*.whl 2>/dev/null | head -1 || true)
if [ -z "$wheel" ]; then
	log "downloading torch==$TORCH_VERSION (about 700 MB)"
	pipdl "torch==$TORCH_VERSION"
	wheel=$(ls "$TORCH_WHEELS"/torch-"$TORCH_VERSION"-cp311-*.whl | head -1)
fi
log "wheel $wheel"

stamp="$TORCH_DIR/.installed-$TORCH_VERSION-cuda$TORCH_CUDA"
if [ ! -f "$stamp" ]; then
	rm -rf "$TORCH_DIR"
	mkdir -p "$TORCH_DIR"
	log "unpacking torch/lib and torch/include into $TORCH_DIR"
	# torch/lib and the nvidia/* packages keep the wheel layout so that the
	# libraries' RPATH ($ORIGIN/../../nvidia/<pkg>/lib) finds the CUDA
	# libraries without LD_LIBRARY_PATH.
	unzip -q -o "$wheel" 'torch/lib/*' 'torch/include/*' -d "$TORCH_DIR"
	# Which nvidia-* wheels are needed: with TORCH_CUDA=0 only those that
	# provide a DT_NEEDED of libtorch_cpu.so (the CUDA runtime and CUPTI,
	# for the profiler); otherwise every one the wheel pins.
	meta=$(unzip -p "$wheel" "torch-$TORCH_VERSION.dist-info/METADATA")
	pins=$(printf '%s\n' "$meta" | sed -n 's/^Requires-Dist: \(nvidia-[a-z0-9-]*\) *(\?==\([^ );]*\)).*/\1==\2/p; s/^Requires-Dist: \(nvidia-[a-z0-9-]*\)==\([^ ;]*\) *;.*/\1==\2/p')
	if [ "$TORCH_CUDA" != 1 ]; then
		pins=$(printf '%s\n' "$pins" | grep -E '^nvidia-cuda-(runtime|cupti)-' || true)
	fi
	for pin in $pins; do
		name=${pin%%==*}
		ver=${pin#*==}
		file=$(ls "$TORCH_WHEELS"/"${name//-/_}"-"$ver"-*.whl 2>/dev/null | head -1 || true)
		if [ -z "$file" ]; then
			log "downloading $pin"
			pipdl "$pin"
			file=$(ls "$TORCH_WHEELS"/"${name//-/_}"-"$ver"-*.whl | head -1)
		fi
		unzip -q -o "$file" 'nvidia/*' -d "$TORCH_DIR"
	done
	missing=$(LD_LIBRARY_PATH= ldd "$TORCH_DIR/torch/lib/libtorch_cpu.so" | grep 'not found' || true)
	if [ -n "$missing" ]; then
		log "libtorch_cpu.so has unresolved dependencies:"
		echo "$missing" >&2
		exit 1
	fi
	if [ "$TORCH_CUDA" = 1 ]; then
		missing=$(LD_LIBRARY_PATH= ldd "$TORCH_DIR/torch/lib/libtorch_cuda.so" | grep 'not found' || true)
		if [ -n "$missing" ]; then
			log "libtorch_cuda.so has unresolved dependencies:"
			echo "$missing" >&2
			exit 1
		fi
	fi
	touch "$stamp"
fi
log "libtorch $TORCH_VERSION in $TORCH_DIR/torch"

if [ "${TORCH_LIB_ONLY:-0}" = 1 ]; then
	exit 0
fi

# Build-local copy of gotch. Its libtch/lib.go hard-codes CUDA link flags
# (and -D_GLIBCXX_USE_CXX11_ABI only for C, not C++); cgo offers no way to
# remove directives through the environment, so the copy gets its own
# lib.go. The module cache is only read.
src=$(go mod download -json "github.com/sugarme/gotch@$GOTCH_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
if [ -z "$src" ] || [ ! -d "$src" ]; then
	log "go mod download github.com/sugarme/gotch@$GOTCH_VERSION gave no directory"
	exit 1
fi
rm -rf "$GOTCH_DIR/gotch"
mkdir -p "$GOTCH_DIR/gotch"
# example/ and gen/ (the OCaml code generator) are not needed to build.
(cd "$src" && tar cf - --exclude=./example --exclude=./gen .) | (cd "$GOTCH_DIR/gotch" && tar xf -)
chmod -R u+w "$GOTCH_DIR/gotch"

lib="$TORCH_DIR/torch/lib"
inc="$TORCH_DIR/torch/include"
# The PyPI wheels up to torch 2.6 are built with the pre-C++11 libstdc++
# ABI; detect it from libc10's exported std::string symbols.
abi=0
if nm -D --defined-only -C "$lib/libc10.so" | grep -q 'c10::Error::Error(c10::SourceLocation, std::__cxx11::basic_string'; then
	abi=1
fi
cudalibs=""
if [ "$TORCH_CUDA" = 1 ]; then
	cudalibs="-Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed"
fi
cat >"$GOTCH_DIR/gotch/libtch/lib.go" <<EOF
package libtch

// Generated by scripts/torch-install.sh (arbench) for libtorch $TORCH_VERSION
// in $TORCH_DIR; replaces gotch's lib.go, which links CUDA unconditionally.
// TORCH_CUDA=$TORCH_CUDA.

// #cgo LDFLAGS: -L$lib -Wl,-rpath,$lib $cudalibs -ltorch_cpu -lc10 -lstdc++
// #cgo CFLAGS: -I\${SRCDIR} -O2 -Wall -Wno-unused-variable -Wno-deprecated-declarations -Wno-sign-compare -Wno-unused-function
// #cgo CFLAGS: -D_GLIBCXX_USE_CXX11_ABI=$abi
// #cgo CXXFLAGS: -std=c++17 -I\${SRCDIR} -O1 -D_GLIBCXX_USE_CXX11_ABI=$abi -w
// #cgo CXXFLAGS: -I$inc -I$inc/torch/csrc/api/include
import "C"
EOF

gover=$(sed -n 's/^go \(.*\)$/\1/p' go.mod)
cat >"$GOTCH_DIR/go.work" <<EOF
// Generated by scripts/torch-install.sh: builds arbench against the local
// gotch copy. Use with GOWORK=$GOTCH_DIR/go.work (see torch.mk).
go $gover

use $root

replace github.com/sugarme/gotch $GOTCH_VERSION => ./gotch
EOF
log "gotch $GOTCH_VERSION copy in $GOTCH_DIR/gotch; build with GOWORK=$GOTCH_DIR/go.work go build -tags gotch"
