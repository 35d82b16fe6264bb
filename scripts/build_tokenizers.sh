#!/usr/bin/env bash
# Build libtokenizers.a (the Rust half of github.com/daulet/tokenizers) with cargo.
#
# The Rust sources ship inside the Go module zip of the version go.mod requires. Upstream's
# Cargo.toml takes tiktoken-rs from a GitHub branch, which cannot be fetched here, so the
# sources are copied into the build tree and that one dependency is pointed at the crates.io
# release. Nothing upstream is ever written into the repository.
#
# usage: scripts/build_tokenizers.sh [OUTDIR]   (writes OUTDIR/libtokenizers.a;
#                                              default build/tokenizers/lib)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build/tokenizers/lib}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$root/build/tokenizers

cd "$root"
mod=github.com/daulet/tokenizers
ver=$(go list -m -f '{{.Version}}' "$mod")
src=$(go mod download -json "$mod@$ver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [[ -z "$src" || ! -f "$src/Cargo.toml" ]]; then
	echo "build_tokenizers: no Cargo.toml in the module dir of $mod@$ver ($src)" >&2
	exit 1
fi

# Fresh copy when the version changed (or on first use); keep target/ for incremental builds.
if [[ ! -f "$work/.version" || "$(cat "$work/.version")" != "$ver" ]]; then
	rm -rf "$work/src" "$work/Cargo.toml" "$work/Cargo.lock"
	mkdir -p "$work"
	cp -r "$src/src" "$src/Cargo.toml" "$src/Cargo.lock" "$src/tokenizers.h" "$work/"
	[[ -d "$src/benches" ]] && cp -r "$src/benches" "$work/"
	chmod -R u+w "$work"   # the module cache is read-only
	# git dependency -> crates.io release
	sed -i -E 's|^tiktoken-rs[[:space:]]*=.*$|tiktoken-rs = "0.9"|' "$work/Cargo.toml"
	grep -q '^tiktoken-rs = "0.9"$' "$work/Cargo.toml" || {
		echo "build_tokenizers: could not rewrite the tiktoken-rs dependency" >&2; exit 1; }
	echo "$ver" > "$work/.version"
fi

echo "build_tokenizers: cargo build --release --lib ($mod@$ver, $(nproc) cores)"
(cd "$work" && cargo build --release --lib)
install -m 0644 "$work/target/release/libtokenizers.a" "$out/libtokenizers.a.tmp"
mv -f "$out/libtokenizers.a.tmp" "$out/libtokenizers.a"
echo "build_tokenizers: wrote $out/libtokenizers.a"
