#!/usr/bin/env bash
# check-generate.sh regenerates the bpf2go output in bpf/ (xdpfwd_bpfel.go,
# xdpfwd_bpfel.o) in place and fails if it differs from what is committed,
# so that the committed object always matches bpf/xdpfwd.c.
#
# Needs clang-14, llvm-strip-14 (llvm-14) and the libbpf headers
# (libbpf-dev): apt-get install -y clang-14 llvm-14 libbpf-dev
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

fail() {
	echo "check-generate: $*" >&2
	exit 1
}

for tool in clang-14 llvm-strip-14 git go; do
	command -v "$tool" >/dev/null || fail "$tool not found; install clang-14 llvm-14 libbpf-dev"
done
[[ -f /usr/include/bpf/bpf_helpers.h ]] || fail "/usr/include/bpf/bpf_helpers.h not found; install libbpf-dev"

# Changes made before generating would be blamed on the generator.
if [[ -n "$(git status --porcelain -- bpf/)" ]]; then
	git status --short -- bpf/ >&2
	fail "bpf/ has uncommitted changes before generating; commit or remove them first"
fi

go generate ./bpf/ || fail "go generate ./bpf/ failed"

if [[ -n "$(git status --porcelain -- bpf/)" ]]; then
	git status --short -- bpf/ >&2
	git diff --stat -- bpf/ >&2 || true
	fail "generated files in bpf/ differ from the committed ones: run 'go generate ./bpf/' with clang-14 and commit the result"
fi
git diff --exit-code --quiet -- bpf/ || fail "git diff -- bpf/ is not empty after generating"
echo "check-generate: bpf/ is up to date"
