package router

import (
	"net/netip"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
	"github.com/xdpfwd/xdpfwd/fastpath/route"
)

// MasqueradeSource returns the address masquerade translates a forwarded
// packet's source to (IPv4 in the first 4 bytes), as the kernel picks it
// at postrouting: for IPv4, inet_select_addr on the output interface
// toward the next hop (its address on the next hop's subnet, else its
// first); for IPv6, the output interface's address for the destination
// (ipv6_dev_get_saddr: a global address on the destination's prefix, else
// its first global, else its link-local address for a link-local
// destination). ok is false when the interface has none ("ate my IP
// address": the packet is dropped). It allocates nothing.
func (r *Router) MasqueradeSource(p *fastpath.Packet, v6 bool) (src [16]byte, ok bool) {
	if p.OutIface == 0 || int(p.OutIface) > len(r.ifaces) || p.L3Off == 0 {
		return src, false
	}
	f := r.iface(p.OutIface)
	ip := p.Data[p.L3Off:p.L3End]
	if !v6 {
		if len(ip) < header.IPv4MinSize {
			return src, false
		}
		target := header.IPv4(ip).Dst()
		if p.RouteHop != 0 {
			view := r.table.FIB().View()
			if h := view.Hop(route.Result{NextHop: p.RouteHop, Type: route.Unicast}); h.Kind == route.Gateway4 {
				target = [4]byte(h.Gateway[:4])
			}
		}
		a, ok := f.source4(target)
		copy(src[:], a[:])
		return src, ok
	}
	if len(ip) < header.IPv6Size {
		return src, false
	}
	dst := header.IPv6(ip).Dst()
	if dst[0] == 0xfe && dst[1]&0xc0 == 0x80 {
		return f.linkLocal, f.linkLocal != [16]byte{}
	}
	d := netip.AddrFrom16(dst)
	for _, a := range f.Addrs {
		if a.Addr().Is6() && a.Masked().Contains(d) {
			return a.Addr().As16(), true
		}
	}
	if len(f.v6) > 0 {
		return f.v6[0], true
	}
	return src, false
}

// RedirectTarget returns the address redirect translates a packet's
// destination to (IPv4 in the first 4 bytes): the first address of the
// interface it came in on, as the kernel's nf_nat_redirect_ipv4 (the
// interface's primary address) and nf_nat_redirect_ipv6 (its first
// address, globals before link-local). ok is false when it has none (the
// kernel drops the packet).
func (r *Router) RedirectTarget(p *fastpath.Packet, v6 bool) (dst [16]byte, ok bool) {
	if p.InIface == 0 || int(p.InIface) > len(r.ifaces) {
		return dst, false
	}
	f := r.iface(p.InIface)
	if !v6 {
		if len(f.v4) == 0 {
			return dst, false
		}
		copy(dst[:], f.v4[0][:])
		return dst, true
	}
	if len(f.v6) > 0 {
		return f.v6[0], true
	}
	return f.linkLocal, f.linkLocal != [16]byte{}
}
