package route

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

// FuzzTable applies a sequence of adds, replaces and deletes taken from
// the input (8 bytes each) to a Table and to the naive reference, and
// after each one compares every lookup at the edges of every prefix and at
// a few other addresses. Prefixes with host bits set must be refused and
// change nothing.
//
//	byte 0:    operation (bits 0-1: add, replace, delete, delete a
//	           present route), family (bit 2: IPv6)
//	byte 1:    prefix length (modulo 33 or 129)
//	bytes 2-5: address (IPv6: 2001:db8: then these bytes, then byte 2)
//	byte 6:    type (modulo 6; 0 and 1 unicast), number of next hops
//	byte 7:    metric (modulo 3, times 10), next hops' ports and weights
func FuzzTable(f *testing.F) {
	f.Add([]byte{0, 8, 10, 0, 0, 0, 0, 0, 0, 24, 10, 1, 2, 0, 9, 1, 2, 8, 10, 0, 0, 0, 0, 0})
	f.Add([]byte{4, 32, 0, 0, 0, 0, 0, 0, 4, 64, 1, 2, 3, 4, 8, 1, 6, 64, 1, 2, 3, 4, 0, 0})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 17, 0, 0, 32, 255, 255, 255, 255, 2, 0, 1, 0, 0, 0, 0, 0, 3, 0, 3, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 25, 10, 1, 2, 128, 0, 0, 0, 23, 10, 1, 2, 0, 0, 0})
	f.Fuzz(runFuzzOnce)
}

func runFuzzOnce(t *testing.T, data []byte) {
	{
		if len(data) > 8*64 {
			data = data[:8*64]
		}
		tb := NewTable()
		m := newRef()
		rng := rand.New(rand.NewPCG(uint64(len(data)), 1))
		for len(data) >= 8 {
			op, b := data[0], data[:8]
			data = data[8:]
			is4 := op&4 == 0
			var a netip.Addr
			bits := 32
			if is4 {
				a = netip.AddrFrom4([4]byte(b[2:6]))
			} else {
				a = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, b[2], b[3], b[4], b[5], b[2]})
				bits = 128
			}
			p := netip.PrefixFrom(a, int(b[1])%(bits+1))
			r := Route{Prefix: p, Metric: uint32(b[7]%3) * 10}
			switch b[6] % 6 {
			case 2:
				r.Type = Local
				if b[6]&8 != 0 {
					r.NextHops = []NextHop{{Port: uint16(b[7] >> 4)}}
				}
			case 3:
				r.Type = Blackhole
			case 4:
				r.Type = Unreachable
			case 5:
				r.Type = Prohibit
			default:
				n := 1 + int(b[6]>>4)%4
				for i := range n {
					h := NextHop{Port: uint16(i), Weight: uint16(b[7]>>2) * uint16(i+1) % 300}
					if h.Weight > MaxWeight {
						h.Weight = MaxWeight
					}
					if b[6]&8 != 0 {
						h.Gateway = netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)})
					}
					r.NextHops = append(r.NextHops, h)
				}
			}
			canonical := p.Masked() == p
			switch op & 3 {
			case 0:
				err := tb.Add(r)
				switch {
				case !canonical:
					if err == nil || !strings.Contains(err.Error(), "host bits") {
						t.Fatalf("Add(%s): %v, want a host bits error", r, err)
					}
				case m.has(p, r.Metric):
					if !errors.Is(err, ErrExists) {
						t.Fatalf("Add(%s) over an existing route: %v", r, err)
					}
				case err != nil:
					t.Fatalf("Add(%s): %v", r, err)
				default:
					m.add(r)
				}
			case 1:
				err := tb.Replace(r)
				if canonical != (err == nil) {
					t.Fatalf("Replace(%s): %v", r, err)
				}
				if canonical {
					m.add(r)
				}
			case 2:
				err := tb.Delete(p, r.Metric)
				switch {
				case !canonical:
					if err == nil || !strings.Contains(err.Error(), "host bits") {
						t.Fatalf("Delete(%s): %v, want a host bits error", p, err)
					}
				case m.has(p, r.Metric):
					if err != nil {
						t.Fatalf("Delete(%s, %d): %v", p, r.Metric, err)
					}
					m.del(p, r.Metric)
				default:
					if !errors.Is(err, ErrNotFound) {
						t.Fatalf("Delete(%s, %d) of an absent route: %v", p, r.Metric, err)
					}
				}
			case 3:
				if q, metric, ok := m.pick(rng); ok {
					if err := tb.Delete(q, metric); err != nil {
						t.Fatalf("Delete(%s, %d): %v", q, metric, err)
					}
					m.del(q, metric)
				}
			}
			checkAll(t, tb, m, rng, true, 8)
			checkAll(t, tb, m, rng, false, 8)
			if got, want := tb.Len(), m.count(); got != want {
				t.Fatalf("Len = %d, reference has %d", got, want)
			}
		}
	}
}
