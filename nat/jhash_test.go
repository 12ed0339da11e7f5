package nat

import "testing"

// The vectors come from the kernel's jhash2 and find_best_ips_proto
// compiled from C (include/linux/jhash.h and the function's body, on a
// little-endian machine; clang 14), not from this package.
func TestJhash2KernelVectors(t *testing.T) {
	k1 := []uint32{0x0100000a, 0, 0, 0}
	k2 := []uint32{0x12345678, 0x9abcdef0, 0x0fedcba9, 0x87654321}
	for _, c := range []struct {
		k       []uint32
		initval uint32
		want    uint32
	}{
		{k1, 0, 0x44dd116c},
		{k1, 0x0200000a, 0x0ffb39d1},
		{k2, 0x11223344, 0xaf6733dd},
		{[]uint32{0xdeadbeef}, 0, 0x79e3d207},
		{[]uint32{1, 2, 3}, 7, 0xfbd612ad},
		{[]uint32{1, 2, 3, 4, 5, 6, 7}, 0xffffffff, 0x5011157b},
		{nil, 5, 0xdeadbef4},
	} {
		if got := jhash2(c.k, c.initval); got != c.want {
			t.Errorf("jhash2(%#x, %#x) = %#x, kernel %#x", c.k, c.initval, got, c.want)
		}
	}
}

func TestReciprocalScale(t *testing.T) {
	for _, c := range []struct{ v, n, want uint32 }{
		{0, 10, 0}, {0xffffffff, 10, 9}, {0x80000000, 10, 5}, {0x12345678, 0, 0}, {0xffffffff, 0xffffffff, 0xfffffffe},
	} {
		if got := reciprocalScale(c.v, c.n); got != c.want {
			t.Errorf("reciprocalScale(%#x, %d) = %d, want %d", c.v, c.n, got, c.want)
		}
	}
}
