#!/usr/bin/env bash
# Installs, on Debian, what building, testing and the demo need and the
# machine does not have yet. Idempotent: it installs nothing already there.
set -euo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

# command:package pairs.
need=(
	ip:iproute2
	ping:iputils-ping
	nft:nftables
	ethtool:ethtool
	clang-14:clang-14
	llvm-strip-14:llvm-14
	bpftool:bpftool
	make:make
	sysctl:procps
	conntrack:conntrack
	tcpdump:tcpdump
)
missing=()
for pair in "${need[@]}"; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
[ -e /usr/include/bpf/bpf_helpers.h ] || missing+=(libbpf-dev)
[ -e /usr/include/x86_64-linux-gnu/asm/types.h ] || missing+=(linux-libc-dev)

if [ "${#missing[@]}" -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Makefile looks for Go on PATH and in /usr/local/go/bin.
if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
	echo "deps: Go 1.26 or newer is needed (https://go.dev/dl): not on PATH, not in /usr/local/go/bin" >&2
	exit 1
fi
