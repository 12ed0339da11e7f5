package bpf

// The generated xdpfwd_bpfel.go and xdpfwd_bpfel.o are committed, so that
// building xdpfwd needs no clang. scripts/check-generate.sh checks that they
// match xdpfwd.c.
//
//go:generate go tool bpf2go -cc clang-14 -strip llvm-strip-14 -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu" -target bpfel -type counter -type mac_key -type ipv6_key xdpfwd xdpfwd.c
