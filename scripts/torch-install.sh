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
#                  download every nvidia-* wheel the torch wheel pins.
#                  link: link libtorch_cuda + libc10_cuda like 1, but with
#                  --allow-shlib-undefined and without downloading the CUDA
#                  libraries: the binary only starts where a complete torch
#                  installation is on LD_LIBRARY_PATH (scripts/gpu-check.sh).
#   TORCH_DIR      where libtorch is unpacked (default .cache/libtorch)
#   GOTCH_DIR      where the gotch copy and go.work go (default .cache/gotch)
#   TORCH_WHEELS   where wheels are downloaded (default .cache/torch)
#   GOTCH_CXXSTD   C++ standard for gotch's C++ layer (default c++17, as
#                  gotch sets; libtorch >= 2.10 headers require c++20)
#   GOTCH_STUBS    space-separated functions of gotch's generated C++ layer
#                  (libtch/torch_api_generated.cpp.h) to replace with stubs
#                  that raise an error: those that no longer compile against
#                  a newer libtorch (see nn/gotch/README.md for 2.15's list)
#   TORCH_LIB_ONLY 1: stop after unpacking libtorch (for experiments)
#   TORCH_CHECK_DEPS 0: do not require libtorch_cpu.so's shared-library
#                  dependencies to resolve (compile-only experiments with
#                  wheels whose CUDA packages this script does not know)
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
trap 'log "failed (line $LINENO): $BASH_COMMAND"' ERR

# The wheel's libtorch is the same for every CPython version; asking for
# the CPython 3.11 wheel makes the download independent of the local Python
# (the platform is still this machine's: Linux x86-64).
pipdl() {
	"$PY" -m pip download --quiet --no-cache-dir --no-deps --only-binary=:all: \
		--python-version 3.11 --implementation cp --abi cp311 \
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
	# for the profiler); otherwise every one the wheel pins. Wheels up to
	# about torch 2.8 pin nvidia-*-cu12 packages directly; newer ones pin
	# the cuda-toolkit meta-package, whose extras name the nvidia-* wheels.
	meta=$(unzip -p "$wheel" "torch-$TORCH_VERSION.dist-info/METADATA")
	pins=$(printf '%s\n' "$meta" | sed -n 's/^Requires-Dist: \(nvidia-[a-z0-9-]*\) *(\?==\([^ );]*\)).*/\1==\2/p; s/^Requires-Dist: \(nvidia-[a-z0-9-]*\)==\([^ ;]*\) *;.*/\1==\2/p')
	ctk=$(printf '%s\n' "$meta" | sed -n 's/^Requires-Dist: cuda-toolkit\[\([^]]*\)\]==\([^ ;]*\).*/\2/p' | head -1)
	if [ -n "$ctk" ]; then
		extras=$(printf '%s\n' "$meta" | sed -n 's/^Requires-Dist: cuda-toolkit\[\([^]]*\)\]==.*/\1/p' | head -1 | tr ',' ' ')
		ctkwheel=$(ls "$TORCH_WHEELS"/cuda_toolkit-"$ctk"-*.whl 2>/dev/null | head -1 || true)
		if [ -z "$ctkwheel" ]; then
			log "downloading cuda-toolkit==$ctk (metadata only)"
			pipdl "cuda-toolkit==$ctk"
			ctkwheel=$(ls "$TORCH_WHEELS"/cuda_toolkit-"$ctk"-*.whl | head -1)
		fi
		cmeta=$(unzip -p "$ctkwheel" '*.dist-info/METADATA')
		for x in $extras; do
			# The first requirement of extra $x whose marker admits Linux.
			pins="$pins
$(printf '%s\n' "$cmeta" | awk -v x="extra == '$x'" '!done && index($0, x) && index($0, "linux") && /^Requires-Dist: / { print; done = 1 }' |
				sed -n 's/^Requires-Dist: \([a-z0-9-]*\)==\([^ ;]*\);.*/\1==\2/p')"
		done
	fi
	if [ "$TORCH_CUDA" != 1 ]; then
		pins=$(printf '%s\n' "$pins" | grep -E '^nvidia-cuda-(runtime|cupti)(-cu[0-9]+)?==' || true)
	fi
	for pin in $pins; do
		name=${pin%%==*}
		ver=${pin#*==}
		ver=${ver%.\*} # 13.2.86.* matches the file 13.2.86-... or 13.2.86.1-...
		file=$(ls "$TORCH_WHEELS"/"${name//-/_}"-"$ver"*-*.whl 2>/dev/null | head -1 || true)
		if [ -z "$file" ]; then
			log "downloading $pin"
			pipdl "$pin"
			file=$(ls "$TORCH_WHEELS"/"${name//-/_}"-"$ver"*-*.whl | head -1)
		fi
		unzip -q -o "$file" 'nvidia/*' -d "$TORCH_DIR"
	done
	missing=$(LD_LIBRARY_PATH= ldd "$TORCH_DIR/torch/lib/libtorch_cpu.so" | grep 'not found' || true)
	if [ -n "$missing" ] && [ "${TORCH_CHECK_DEPS:-1}" != 0 ]; then
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
# The copy is redone only when its configuration changes, so that repeated
# `make torch` runs leave a working copy alone.
gover=$(sed -n 's/^go \(.*\)$/\1/p' go.mod)
config="gotch=$GOTCH_VERSION src=$src torch=$TORCH_VERSION dir=$TORCH_DIR cuda=$TORCH_CUDA std=${GOTCH_CXXSTD:-c++17} stubs=${GOTCH_STUBS:-} go=$gover script=$(cksum <"$root/scripts/torch-install.sh")"
if [ -f "$GOTCH_DIR/.config" ] && [ "$(cat "$GOTCH_DIR/.config")" = "$config" ] && [ -f "$GOTCH_DIR/go.work" ]; then
	log "gotch copy in $GOTCH_DIR/gotch is up to date"
	exit 0
fi
rm -rf "$GOTCH_DIR/gotch" "$GOTCH_DIR/.config"
mkdir -p "$GOTCH_DIR/gotch"
# example/ and gen/ (the OCaml code generator) are not needed to build.
(cd "$src" && tar cf - --exclude=./example --exclude=./gen .) | (cd "$GOTCH_DIR/gotch" && tar xf -)
chmod -R u+w "$GOTCH_DIR/gotch"

if [ -n "${GOTCH_STUBS:-}" ]; then
	log "stubbing $GOTCH_STUBS"
	"$PY" - "$GOTCH_DIR/gotch/libtch/torch_api_generated.cpp.h" "$TORCH_VERSION" $GOTCH_STUBS <<'PYEOF'
import re, sys
path, version, names = sys.argv[1], sys.argv[2], sys.argv[3:]
lines = open(path).read().split("\n")
for name in names:
    head = re.compile(r"^(void|tensor \*|\w+) ?\*?" + re.escape(name) + r"\(.*\) \{$")
    starts = [i for i, l in enumerate(lines) if head.match(l)]
    if len(starts) != 1:
        sys.exit(f"torch-install: {name}: {len(starts)} definitions in {path}")
    i = starts[0]
    j = lines.index("}", i)
    ret = "" if lines[i].startswith("void ") else "\n  return nullptr;"
    msg = f"{name} is not available with libtorch {version} (stubbed by arbench's torch-install.sh)"
    lines[i + 1 : j] = [f'  PROTECT(throw std::runtime_error("{msg}");){ret}']
open(path, "w").write("\n".join(lines))
PYEOF
fi

lib="$TORCH_DIR/torch/lib"
inc="$TORCH_DIR/torch/include"
# The PyPI wheels up to torch 2.6 are built with the pre-C++11 libstdc++
# ABI; detect it from libc10's exported std::string symbols.
abi=0
if nm -D --defined-only -C "$lib/libc10.so" | grep 'c10::Error::Error(c10::SourceLocation, std::__cxx11::basic_string' >/dev/null; then
	abi=1
fi
cudalibs=""
case $TORCH_CUDA in
1) cudalibs="-Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed" ;;
link) cudalibs="-Wl,--allow-shlib-undefined -Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed" ;;
esac
cat >"$GOTCH_DIR/gotch/libtch/lib.go" <<EOF
package libtch

// Generated by scripts/torch-install.sh (arbench) for libtorch $TORCH_VERSION
// in $TORCH_DIR; replaces gotch's lib.go, which links CUDA unconditionally.
// TORCH_CUDA=$TORCH_CUDA.

// #cgo LDFLAGS: -L$lib -Wl,-rpath,$lib $cudalibs -ltorch_cpu -lc10 -lstdc++
// #cgo CFLAGS: -I\${SRCDIR} -O2 -Wall -Wno-unused-variable -Wno-deprecated-declarations -Wno-sign-compare -Wno-unused-function
// #cgo CFLAGS: -D_GLIBCXX_USE_CXX11_ABI=$abi
// #cgo CXXFLAGS: -std=${GOTCH_CXXSTD:-c++17} -I\${SRCDIR} -O1 -D_GLIBCXX_USE_CXX11_ABI=$abi -w
// #cgo CXXFLAGS: -I$inc -I$inc/torch/csrc/api/include
import "C"
EOF

cat >"$GOTCH_DIR/go.work" <<EOF
// Generated by scripts/torch-install.sh: builds arbench against the local
// gotch copy. Use with GOWORK=$GOTCH_DIR/go.work (see torch.mk).
go $gover

use $root

replace github.com/sugarme/gotch $GOTCH_VERSION => ./gotch
EOF
echo "$config" >"$GOTCH_DIR/.config"
log "gotch $GOTCH_VERSION copy in $GOTCH_DIR/gotch; build with GOWORK=$GOTCH_DIR/go.work go build -tags gotch"
