package neigh_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath/header"
	"github.com/xdpfwd/xdpfwd/fastpath/neigh"
)

// A worker routes two packets to a next hop nobody has resolved yet, the
// neighbour answers, and the worker's next Poll sends them.
func Example() {
	tab, err := neigh.New(neigh.Config{Params: neigh.DefaultParams()})
	if err != nil {
		panic(err)
	}
	w, err := tab.NewWorker(1024)
	if err != nil {
		panic(err)
	}
	const lan0 = 1
	nexthop := netip.MustParseAddr("10.1.0.2").As16() // IPv4-mapped
	now := int64(0)

	for frame := uint64(0x1000); frame <= 0x2000; frame += 0x1000 {
		mac, action := w.Resolve(lan0, nexthop, now)
		switch action {
		case neigh.Send, neigh.SendProbe:
			fmt.Println("send with", mac)
		case neigh.HoldSolicit, neigh.Hold:
			if action == neigh.HoldSolicit {
				fmt.Println("broadcast an ARP request for 10.1.0.2")
			}
			if dropped, ok := w.Hold(lan0, nexthop, frame, 98, nil); !ok || len(dropped) > 0 {
				fmt.Println("free", dropped)
			}
		case neigh.Drop:
			fmt.Println("free the frame")
		}
	}

	// The ARP reply, addressed to us, 2 ms later.
	now += int64(2 * time.Millisecond)
	peer := header.MAC{0x02, 0, 0, 0, 0, 0x01}
	fmt.Println("reply:", tab.Confirm(lan0, nexthop, peer, neigh.ARPReply|neigh.Unicast, now))

	events := make([]neigh.Event, 64)
	for _, ev := range events[:w.Poll(now, events)] {
		fmt.Printf("%v frame %#x to %v\n", ev.Kind, ev.Handle, ev.MAC)
	}
	l, _ := tab.Lookup(lan0, netip.MustParseAddr("10.1.0.2"), now)
	fmt.Println(l.Format("lan0"))
	// Output:
	// broadcast an ARP request for 10.1.0.2
	// reply: updated
	// send frame 0x1000 to 02:00:00:00:00:01
	// send frame 0x2000 to 02:00:00:00:00:01
	// 10.1.0.2 dev lan0 lladdr 02:00:00:00:00:01 REACHABLE
}
