package neigh

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// model is the table as a plain map, driven by the same state machine
// functions: the reference for the lock-free storage (slots, buckets,
// seqlocks, the lazy timers Resolve, Confirm, Tick and Lookup apply, and
// garbage collection).
type model struct {
	tm    timing
	p     Params
	reach ms
	m     map[key]entry
}

func (md *model) count(fam int) (n int) {
	for k, e := range md.m {
		if k.family() == fam && e.state != StatePermanent {
			n++
		}
	}
	return n
}

func (md *model) resolve(k key, now ms) (header.MAC, Action) {
	e, ok := md.m[k]
	if !ok {
		if md.tm.mcast == 0 {
			return header.MAC{}, Drop
		}
		e = entry{hi: k.hi, lo: k.lo, iface: k.iface}
		md.tm.startIncomplete(&e, now)
		md.m[k] = e
		return header.MAC{}, HoldSolicit
	}
	ne, act, _ := md.tm.onSend(e, now, md.reach)
	md.m[k] = ne
	return ne.mac, act
}

func (md *model) confirm(k key, mac header.MAC, how How, now ms) Outcome {
	v6kind := how.Kind() == NS || how.Kind() == NA
	if how.Kind() < ARPRequest || how.Kind() > NA || k.v4() == v6kind || how&NoLinkAddr == 0 && (mac.IsMulticast() || mac.IsZero()) || k.hi == 0 && (k.lo == 0 || k.lo == 0xffff<<32) {
		return Invalid
	}
	e, ok := md.m[k]
	if ok {
		md.tm.advance(&e, now, md.reach)
	}
	ne, out, _ := md.tm.confirm(e, ok, mac, how, now)
	if !ok {
		if out == Ignored {
			return Ignored
		}
		ne.hi, ne.lo, ne.iface = k.hi, k.lo, k.iface
		md.m[k] = ne
		return Created
	}
	md.m[k] = ne
	return out
}

// sweep is a whole Tick round starting at bucket 0.
func (md *model) sweep(now ms) {
	on := [2]bool{md.count(0) >= md.p.GCThresh1, md.count(1) >= md.p.GCThresh1}
	for k, e := range md.m {
		ne := e
		md.tm.advance(&ne, now, md.reach)
		rebase(&ne, now)
		collect := false
		if e.state == ne.state && ne.state != StatePermanent && on[k.family()] {
			switch ne.state {
			case StateFailed:
				collect = age(now, ne.updated) >= md.tm.retrans
			case StateStale:
				used := ne.used
				if before(used, ne.confirmed) {
					used = ne.confirmed
				}
				collect = age(now, used) >= md.tm.gcStale
			}
		}
		if collect {
			delete(md.m, k)
		} else {
			md.m[k] = ne
		}
	}
}

var fuzzKeys = func() (ips [][16]byte) {
	for _, s := range []string{"10.0.0.1", "10.0.0.2", "192.168.1.1", "fe80::1", "fd00::2", "2001:db8::3"} {
		ips = append(ips, netip.MustParseAddr(s).As16())
	}
	return ips
}()

var fuzzSteps = [...]time.Duration{0, time.Millisecond, 500 * time.Millisecond, time.Second, 3 * time.Second, 5 * time.Second, 30 * time.Second, 61 * time.Second}

var fuzzHows = [...]How{
	ARPRequest, ARPRequestForUs, ARPReply, ARPReply | Unicast, ARPRequest | Gratuitous, ARPReply | Unicast | Gratuitous,
	NS, NA, NA | Solicited, NA | Override, NA | Solicited | Override, NA | Solicited | Override | IsRouter, NA | IsRouter | NoLinkAddr, NA | Solicited | NoLinkAddr,
}

// FuzzTable runs operations decoded from the input on a Table and on the
// model and compares every answer and, after each operation, every entry.
func FuzzTable(f *testing.F) {
	f.Add([]byte{0, 0, 1, 3, 0x30, 2, 7, 5, 0, 0})
	f.Add([]byte{0, 3, 1, 3, 0x38, 2, 4, 0, 3, 2, 6, 3, 5, 0, 1, 0, 0x21, 2, 7, 4, 1})
	f.Add([]byte{1, 0, 0x10, 1, 3, 0x0b, 2, 6, 0, 3, 2, 7, 3, 4, 2, 7, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		p := DefaultParams()
		// A small table (8 buckets) that the 12 keys never fill.
		p.GCThresh1, p.GCThresh2, p.GCThresh3 = 2, 16, 16
		cfg := Config{Params: p, Rand: fixedRand, TickBuckets: 1, MaxStatic: 16}
		tab, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := tab.NewWorker(8)
		md := &model{tm: newTiming(p), p: p, reach: ms(tab.ReachableTime().Milliseconds()), m: map[key]entry{}}
		var now int64 = 1e12
		macs := [...]header.MAC{macA, macB, {2, 0, 0, 0, 0, 0x0c}, {1, 0, 0x5e, 0, 0, 1}}
		for len(ops) >= 2 {
			op, arg := ops[0]%6, ops[1]
			ops = ops[2:]
			ip := fuzzKeys[int(arg)%len(fuzzKeys)]
			iface := uint16(arg>>4&1) + 1
			k := makeKey(iface, &ip)
			now32 := toMS(now)
			switch op {
			case 0:
				mac, a := w.Resolve(iface, ip, now)
				wmac, wa := md.resolve(k, now32)
				if a != wa || a == Send && mac != wmac {
					t.Fatalf("Resolve %v: %v %v, model %v %v", k, mac, a, wmac, wa)
				}
			case 1:
				if len(ops) == 0 {
					return
				}
				how := fuzzHows[int(ops[0])%len(fuzzHows)]
				mac := macs[int(ops[0]>>4)%len(macs)]
				ops = ops[1:]
				o := tab.Confirm(iface, ip, mac, how, now)
				if wo := md.confirm(k, mac, how, now32); o != wo {
					t.Fatalf("Confirm %v %v %v: %v, model %v", k, mac, how, o, wo)
				}
			case 2:
				now += int64(fuzzSteps[arg%8])
			case 3:
				for range len(tab.buckets) {
					tab.Tick(now)
				}
				md.sweep(now32)
			case 4:
				a := netip.AddrFrom16(ip)
				if a.Is4In6() {
					a = a.Unmap()
				}
				got := tab.Delete(iface, a)
				_, want := md.m[k]
				delete(md.m, k)
				if got != want {
					t.Fatalf("Delete %v: %v, model %v", k, got, want)
				}
			case 5:
				mac := macs[int(arg>>5)%3]
				if err := tab.AddStatic(iface, netip.AddrFrom16(ip), mac); err != nil {
					t.Fatal(err)
				}
				e := md.m[k]
				md.m[k] = entry{hi: k.hi, lo: k.lo, iface: iface, state: StatePermanent, mac: mac, round: e.round}
			}
			// Compare every entry.
			now32 = toMS(now)
			n := 0
			for _, ip := range fuzzKeys {
				for iface := uint16(1); iface <= 2; iface++ {
					k := makeKey(iface, &ip)
					got, ok := tab.Lookup(iface, netip.AddrFrom16(ip), now)
					e, wok := md.m[k]
					if ok != wok {
						t.Fatalf("%v: in table %v, in model %v", k, ok, wok)
					}
					if !ok {
						continue
					}
					n++
					want := tab.listEntry(e, now32)
					if got.State != want.State || got.Router != want.Router || got.State.Valid() && got.MAC != want.MAC || got.Probes != want.Probes {
						t.Fatalf("%v: table %+v, model %+v", k, got, want)
					}
				}
			}
			v4n, v6n, st := tab.Len()
			if v4n != md.count(0) || v6n != md.count(1) || v4n+v6n+st != n {
				t.Fatalf("counts %d %d %d, model %d %d, %d entries", v4n, v6n, st, md.count(0), md.count(1), n)
			}
		}
	})
}

// TestOneSolicitationPerRetry: workers resolving the same neighbour at the
// same moment send one solicitation between them per retrans_time.
func TestOneSolicitationPerRetry(t *testing.T) {
	tab, _ := New(Config{Params: DefaultParams(), Rand: fixedRand})
	const workers, packets = 4, 500
	for _, now := range []int64{0, int64(time.Second), int64(1500 * time.Millisecond), int64(2 * time.Second)} {
		var wg sync.WaitGroup
		sol := make([]int, workers)
		for i := range workers {
			w, _ := tab.NewWorker(4)
			wg.Go(func() {
				for range packets {
					if _, a := w.Resolve(1, ip4, now); a == HoldSolicit {
						sol[i]++
					}
				}
			})
		}
		wg.Wait()
		total := 0
		for _, n := range sol {
			total += n
		}
		want := 1
		if now == int64(1500*time.Millisecond) {
			want = 0
		}
		if total != want {
			t.Fatalf("at %v: %d solicitations, want %d", time.Duration(now), total, want)
		}
	}
}
