package router

import (
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// TestICMPLimit: the kernel's limits with its defaults: per destination a
// burst of 6 errors, then one a second (100 ms for IPv6); fragmentation
// needed and echo replies unlimited; over all destinations 50 at once,
// then one a millisecond.
func TestICMPLimit(t *testing.T) {
	l := newLimiter(ICMPLimit{})
	dst := mapped4([4]byte{10, 1, 0, 2})
	now := fastpath.Time(time.Hour)
	sent := 0
	for range 20 {
		if l.allow(true, header.ICMPv4TimeExceeded, 0, dst, 32, now) {
			sent++
		}
	}
	if sent != 6 {
		t.Fatalf("%d errors to one destination at once, want the burst of 6", sent)
	}
	if l.allow(true, header.ICMPv4TimeExceeded, 0, dst, 32, now+fastpath.Time(500*time.Millisecond)) {
		t.Fatal("an error half a second after the burst")
	}
	if !l.allow(true, header.ICMPv4TimeExceeded, 0, dst, 32, now+fastpath.Time(1001*time.Millisecond)) {
		t.Fatal("no error a second after the burst")
	}
	for range 100 {
		if !l.allow(true, header.ICMPv4DestUnreachable, header.ICMPv4FragmentationNeeded, dst, 32, now) {
			t.Fatal("fragmentation needed was limited")
		}
	}
	var dst6 [16]byte
	dst6[0], dst6[15] = 0xfd, 2
	sent = 0
	later := now + fastpath.Time(2*time.Second)
	for range 10 {
		if l.allow(false, header.ICMPv6TimeExceeded, 0, dst6, 128, later) {
			sent++
		}
	}
	if sent != 6 || !l.allow(false, header.ICMPv6TimeExceeded, 0, dst6, 128, later+fastpath.Time(101*time.Millisecond)) {
		t.Fatalf("IPv6: %d at once (want 6), then none 100 ms later", sent)
	}
	// Behind a /64 the interval is 100 ms >> 2 = 25 ms.
	var dst64 [16]byte
	dst64[0], dst64[15] = 0xfd, 3
	later += fastpath.Time(time.Second)
	for range 6 {
		l.allow(false, header.ICMPv6TimeExceeded, 0, dst64, 64, later)
	}
	if l.allow(false, header.ICMPv6TimeExceeded, 0, dst64, 64, later+fastpath.Time(20*time.Millisecond)) ||
		!l.allow(false, header.ICMPv6TimeExceeded, 0, dst64, 64, later+fastpath.Time(26*time.Millisecond)) {
		t.Fatal("IPv6 behind a /64: want one error 25 ms after the burst, none at 20 ms")
	}

	g := newLimiter(ICMPLimit{})
	sent = 0
	for i := range 200 {
		d := mapped4([4]byte{10, 2, byte(i >> 8), byte(i)})
		if g.allow(true, header.ICMPv4DestUnreachable, header.ICMPv4HostUnreachable, d, 32, now) {
			sent++
		}
	}
	if sent != 50 { // icmp_msgs_burst
		t.Fatalf("%d errors to 200 destinations at once, want the global burst (50)", sent)
	}
	if !g.allow(true, header.ICMPv4DestUnreachable, header.ICMPv4HostUnreachable, mapped4([4]byte{10, 3, 0, 1}), 32, now+fastpath.Time(2*time.Millisecond)) {
		t.Fatal("the global bucket did not refill in 2 ms")
	}
	if !newLimiter(ICMPLimit{Off: true}).allow(true, header.ICMPv4TimeExceeded, 0, dst, 32, now) {
		t.Fatal("Off limited")
	}
}

// TestRedirectBackoff: the kernel's per-sender redirect backoff: the
// first at once, the next after 20 ms << n, nine at most, then silence
// until 20.48 s without one.
func TestRedirectBackoff(t *testing.T) {
	l := newRedirectLimiter()
	src := [4]byte{10, 1, 0, 2}
	now := fastpath.Time(time.Hour)
	if !l.allow(src, now) {
		t.Fatal("first redirect refused")
	}
	if l.allow(src, now+fastpath.Time(30*time.Millisecond)) {
		t.Fatal("a second redirect within 40 ms")
	}
	sent := 1
	for i := 1; i < 2000; i++ { // 20 s in 10 ms steps
		if l.allow(src, now+fastpath.Time(time.Duration(i)*10*time.Millisecond)) {
			sent++
		}
	}
	if sent != redirectNumber {
		t.Fatalf("%d redirects in 20 s, want %d", sent, redirectNumber)
	}
	if !l.allow(src, now+fastpath.Time(50*time.Second)) {
		t.Fatal("no redirect after the silence")
	}
}
