#!/usr/bin/env bash
# check_metal.sh: what Linux can check of the Metal path, without a Mac.
#
#  1. Every shaders/*.metal type-checks as C++14 (the base of the Metal Shading Language up to
#     3.2; C++17 is Metal 4's) against shaders/metal_shim/metal_shim.h, which stands in for
#     <metal_stdlib> (clang++, -Wall -Wextra -Werror): the entry points, the Metal prelude and
#     every body they instantiate, for every storage type.
#  2. The [[attributes]] of those files are ones Metal has (clang ignores unknown attributes, so
#     a misspelt [[thread_positon_in_grid]] would otherwise pass).
#  3. go vet for darwin/arm64 and darwin/amd64 with CGO_ENABLED=0 (purego needs no cgo) over
#     every package that builds without cgo: all but github.com/daulet/tokenizers' users
#     (gocore/tokenize, gocore, pybind), whose Rust-backed cgo package has no Go files when
#     CGO_ENABLED=0; and the metalbridge test binary is compiled and linked for darwin/arm64.
#
# Usage: scripts/check_metal.sh   (from anywhere; needs clang++ and go; exits non-zero on failure)
# Debian/Ubuntu: apt-get install -y clang
set -euo pipefail
cd "$(dirname "$0")/.."

CXX=${CXX_METAL_CHECK:-clang++}
if ! command -v "$CXX" >/dev/null; then
	echo "check_metal: $CXX not found (Debian/Ubuntu: apt-get install -y clang)" >&2
	exit 2
fi
SHIM=shaders/metal_shim/metal_shim.h
# Attributes the entry points may use: the Metal Shading Language's kernel argument and
# function attributes (MSL specification, section 5.2).
METAL_ATTRS=" buffer threadgroup texture sampler thread_position_in_grid thread_position_in_threadgroup
 thread_index_in_threadgroup threadgroup_position_in_grid threads_per_grid threads_per_threadgroup
 threadgroups_per_grid thread_index_in_simdgroup simdgroup_index_in_threadgroup
 simdgroups_per_threadgroup threads_per_simdgroup thread_execution_width
 dispatch_threads_per_threadgroup grid_origin grid_size function_constant host_name
 max_total_threads_per_threadgroup kernel"
METAL_ATTRS=" $(echo $METAL_ATTRS) " # one line, space-delimited

fail=0
n=0
for f in shaders/*.metal; do
	n=$((n + 1))
	# 1. type check, warnings are errors; unknown attributes are checked in step 2.
	if ! out=$("$CXX" -std=c++14 -fsyntax-only -Wall -Wextra -Werror -Wno-unknown-attributes \
		-include "$SHIM" -x c++ "$f" 2>&1); then
		echo "FAIL $f: clang++ -fsyntax-only with $SHIM:"
		echo "$out" | head -n 40
		fail=1
		continue
	fi
	# 2. attribute names
	attrs=$("$CXX" -std=c++14 -fsyntax-only -Wunknown-attributes -fno-caret-diagnostics \
		-include "$SHIM" -x c++ "$f" 2>&1 | sed -n "s/.*warning: unknown attribute '\([A-Za-z_:]*\)' ignored.*/\1/p" | sort -u)
	bad=""
	for a in $attrs; do
		[[ "$METAL_ATTRS" == *" $a "* ]] || bad="$bad $a"
	done
	if [[ -n "$bad" ]]; then
		echo "FAIL $f: attributes Metal does not have:$bad"
		fail=1
		continue
	fi
	echo "ok   $f (attributes: $(echo $attrs))"
done
echo "check_metal: $n .metal files type-checked with $("$CXX" --version | head -n 1)"

# 3. go vet for darwin, without cgo.
pkgs=$(GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 go list -f '{{.ImportPath}}{{range .Deps}} {{.}}{{end}}' ./... |
	grep -v ' github.com/daulet/tokenizers\( \|$\)' | cut -d' ' -f1)
for arch in arm64 amd64; do
	if GOOS=darwin GOARCH=$arch CGO_ENABLED=0 go vet $pkgs; then
		echo "ok   go vet GOOS=darwin GOARCH=$arch CGO_ENABLED=0 ($(echo $pkgs | wc -w) packages)"
	else
		echo "FAIL go vet GOOS=darwin GOARCH=$arch CGO_ENABLED=0"
		fail=1
	fi
done
if GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 go test -c -o /dev/null ./metalbridge; then
	echo "ok   go test -c ./metalbridge for darwin/arm64 (compiled and linked, not run)"
else
	echo "FAIL go test -c ./metalbridge for darwin/arm64"
	fail=1
fi

if [[ $fail != 0 ]]; then
	echo "check_metal: FAILED"
	exit 1
fi
echo "check_metal: all passed (not checked without a Mac: see docs/METAL.md)"
