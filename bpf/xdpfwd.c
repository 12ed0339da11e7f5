//go:build ignore

// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// xdpfwd_redirect hands every frame that arrives on a port's RX queue q to
// the AF_XDP socket in slot q of the xsks map. Frames whose destination MAC
// is in pass_macs (the host's own addresses on a NIC that xdpfwd has taken
// over), ARP requests and neighbour solicitations for the host's addresses
// without a VLAN tag (in the bytes or beside them), and frames that arrive
// on a queue with no socket bound go to the kernel stack instead. Every
// verdict is counted in exactly one counter.
//
// A VLAN tag that the kernel carries outside the frame bytes (stripped by
// the NIC with rx-vlan-offload, or left in the socket buffer by a veth
// peer) never reaches an AF_XDP socket on its own: before a redirect the
// program reads it with the bpf_xdp_metadata_rx_vlan_tag kfunc and puts it
// back into the frame, after the MAC addresses (xdpfwd_redirect_tagged).
// The kernel lets only a device-bound program (BPF_F_XDP_DEV_BOUND_ONLY and
// the port's ifindex, native mode) call the kfunc, so xdpfwd_redirect, the
// same program without it, serves generic mode and BPF_PROG_TEST_RUN; the
// loader refuses a port where a tag could arrive that the program in use
// cannot read.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define XSKS_MAX 64
#define VLAN_HLEN 4
#define PASS_MACS_MAX 64
#define PASS_IPV4_MAX 64
#define PASS_IPV6_MAX 64

// Counter indices into the counters map. The Go loader exports them under
// the same names (bpf2go -type counter).
enum counter {
	COUNTER_REDIRECTED = 0,
	COUNTER_PASS_NO_SOCKET,
	COUNTER_PASS_HOST,
	COUNTER_DROP_MALFORMED,
	COUNTER_REDIRECT_FAILED,
	COUNTER_DROP_TOO_BIG,
	// Not a verdict: redirected frames whose out-of-band VLAN tag was put
	// back into the frame. Each is also counted as COUNTER_REDIRECTED.
	COUNTER_VLAN_RESTORED,
	COUNTER_MAX,
};

// A destination MAC address, padded to 8 bytes so that keys have no
// implicit padding and user space writes exactly these bytes.
struct mac_key {
	__u8 addr[ETH_ALEN];
	__u8 pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, XSKS_MAX);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PASS_MACS_MAX);
	__type(key, struct mac_key);
	__type(value, __u8);
} pass_macs SEC(".maps");

// IPv4 addresses (network byte order) whose ARP requests go to the host.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PASS_IPV4_MAX);
	__type(key, __u32);
	__type(value, __u8);
} pass_ipv4 SEC(".maps");

// An IPv6 address, the key of pass_ipv6.
struct ipv6_key {
	__u8 addr[16];
};

// IPv6 addresses whose neighbour solicitations go to the host.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PASS_IPV6_MAX);
	__type(key, struct ipv6_key);
	__type(value, __u8);
} pass_ipv6 SEC(".maps");

// settings[0] is the longest frame the port's sockets take; 0: no limit.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} settings SEC(".maps");

// The part of an Ethernet/IPv4 ARP packet after the Ethernet header that
// the program reads (RFC 826).
#define ARPOP_REQUEST 1
#define ARPHRD_ETHER 1
#define IPPROTO_ICMPV6 58
#define ICMPV6_NEIGHBOUR_SOLICITATION 135

struct arp_ipv4 {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 op;
	__u8 sha[ETH_ALEN];
	__u8 spa[4];
	__u8 tha[ETH_ALEN];
	__u8 tpa[4];
};

// An IPv6 header without extension headers followed by an ICMPv6 neighbour
// solicitation (RFC 8200 3, RFC 4861 4.3), as far as the program reads it.
struct ns_ipv6 {
	__be32 version_class_flow;
	__be16 payload_len;
	__u8 next_header;
	__u8 hop_limit;
	__u8 saddr[16];
	__u8 daddr[16];
	__u8 type;
	__u8 code;
	__be16 checksum;
	__be32 reserved;
	__u8 target[16];
};

// bpf_xdp_metadata_rx_vlan_tag stores the outermost VLAN tag that the
// driver holds outside the frame: its TPID (network byte order) and TCI
// (host byte order). It returns 0, -ENODATA for an untagged frame, or
// -EOPNOTSUPP where the driver cannot say. The kernel loads a program that
// calls it only device-bound.
extern int bpf_xdp_metadata_rx_vlan_tag(const struct xdp_md *ctx, __be16 *vlan_proto,
					__u16 *vlan_tci) __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

// Never used by the program: these make clang emit BTF for the enum, which
// bpf2go turns into Go constants. The loader does not load their section.
const enum counter *unused_counter __attribute__((unused));

static __always_inline int count(__u32 idx, int verdict)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += 1; // per-CPU slot: no other writer
	return verdict;
}

// push_vlan inserts an 802.1Q or 802.1ad header (IEEE 802.1Q 9.3) with the
// given TPID and TCI after the frame's MAC addresses:
//
//   before: | dst (6) | src (6) | type ...
//   after:  | dst (6) | src (6) | TPID (2) | TCI (2) | type ...
//
// It returns 0, or -1 with the frame unchanged.
static __always_inline int push_vlan(struct xdp_md *ctx, __be16 tpid, __u16 tci)
{
	void *data, *data_end;
	__u8 *p;

	if (bpf_xdp_adjust_head(ctx, -VLAN_HLEN))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	p = data;
	if ((void *)(p + 2 * ETH_ALEN + 2 * VLAN_HLEN) > data_end) {
		// Cannot happen (the frame held an Ethernet header), but the
		// verifier needs the bound; give the bytes back.
		bpf_xdp_adjust_head(ctx, VLAN_HLEN);
		return -1;
	}
	__builtin_memmove(p, p + VLAN_HLEN, 2 * ETH_ALEN);
	*(__be16 *)(p + 2 * ETH_ALEN) = tpid;
	*(__be16 *)(p + 2 * ETH_ALEN + 2) = bpf_htons(tci);
	return 0;
}

// for_host tells whether a frame is a neighbour request for one of the
// host's own addresses: an Ethernet/IPv4 ARP request whose target is in
// pass_ipv4 (RFC 826), or an ICMPv6 neighbour solicitation without
// extension headers whose target is in pass_ipv6 (RFC 4861 4.3). Only the
// host answers those; every other broadcast and multicast stays bridged.
static __always_inline int for_host(struct ethhdr *eth, void *data_end)
{
	if (eth->h_proto == bpf_htons(ETH_P_ARP)) {
		struct arp_ipv4 *arp = (void *)(eth + 1);
		__u32 tpa;

		if ((void *)(arp + 1) > data_end || arp->htype != bpf_htons(ARPHRD_ETHER) ||
		    arp->ptype != bpf_htons(ETH_P_IP) || arp->hlen != ETH_ALEN || arp->plen != 4 ||
		    arp->op != bpf_htons(ARPOP_REQUEST))
			return 0;
		__builtin_memcpy(&tpa, arp->tpa, 4);
		return bpf_map_lookup_elem(&pass_ipv4, &tpa) != NULL;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ns_ipv6 *ns = (void *)(eth + 1);
		struct ipv6_key target;

		if ((void *)(ns + 1) > data_end || ns->next_header != IPPROTO_ICMPV6 ||
		    ns->type != ICMPV6_NEIGHBOUR_SOLICITATION || ns->code != 0)
			return 0;
		__builtin_memcpy(target.addr, ns->target, 16);
		return bpf_map_lookup_elem(&pass_ipv6, &target) != NULL;
	}
	return 0;
}

// redirect is the whole program. With read_tag (a constant at each call
// site) it reads the frame's out-of-band VLAN tag and restores it; only a
// device-bound program may call the metadata kfunc, so the object holds two
// programs built from it.
static __always_inline int redirect(struct xdp_md *ctx, const int read_tag)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct mac_key key = {};
	__u32 q = ctx->rx_queue_index;
	__u32 zero = 0, *max_len;
	__be16 vlan_proto = 0;
	__u16 vlan_tci = 0;
	__u32 extra = 0;
	long ret;

	if ((void *)(eth + 1) > data_end)
		return count(COUNTER_DROP_MALFORMED, XDP_DROP);

	// The tag first: a frame is tagged whether its tag is in its bytes or
	// beside them. -ENODATA means untagged. The loader picks this variant
	// only for a driver that implements the kfunc, so -EOPNOTSUPP is not
	// expected here; the frame then goes on as it is.
	if (read_tag && bpf_xdp_metadata_rx_vlan_tag(ctx, &vlan_proto, &vlan_tci) == 0)
		extra = VLAN_HLEN;

	// for_host sees the bytes only: an ARP request or neighbour
	// solicitation whose tag is in its bytes does not match it and is
	// bridged, so one whose tag is beside them is bridged too (the host
	// has no device for its VLAN on this port either way).
	__builtin_memcpy(key.addr, eth->h_dest, ETH_ALEN);
	if (bpf_map_lookup_elem(&pass_macs, &key) || (!extra && for_host(eth, data_end)))
		return count(COUNTER_PASS_HOST, XDP_PASS);

	if (!bpf_map_lookup_elem(&xsks, &q))
		return count(COUNTER_PASS_NO_SOCKET, XDP_PASS);

	// Frames for the kernel keep their out-of-band tag where it is; only a
	// frame bound for a socket gets it back in its bytes, and has to fit a
	// UMEM frame, tag included.
	max_len = bpf_map_lookup_elem(&settings, &zero);
	if (max_len && *max_len && data_end - data + extra > *max_len)
		return count(COUNTER_DROP_TOO_BIG, XDP_DROP);

	// bpf_redirect_map only chooses the target: the frame is handed over
	// as it stands when the program returns, so the tag goes in after a
	// successful choice, and a failed one leaves the frame untouched.
	ret = bpf_redirect_map(&xsks, q, XDP_PASS);
	if (ret != XDP_REDIRECT)
		return count(COUNTER_REDIRECT_FAILED, (int)ret);
	if (extra) {
		if (push_vlan(ctx, vlan_proto, vlan_tci))
			return count(COUNTER_REDIRECT_FAILED, XDP_PASS);
		count(COUNTER_VLAN_RESTORED, 0);
	}
	return count(COUNTER_REDIRECTED, XDP_REDIRECT);
}

// xdpfwd_redirect is the program for ports where no tag can arrive out of
// band, for generic mode, and for BPF_PROG_TEST_RUN: it does not read the
// tag metadata, so it needs no device binding.
SEC("xdp")
int xdpfwd_redirect(struct xdp_md *ctx)
{
	return redirect(ctx, 0);
}

// xdpfwd_redirect_tagged also restores out-of-band VLAN tags. It must be
// loaded device-bound (BPF_F_XDP_DEV_BOUND_ONLY, the port's ifindex) and
// attached in native mode.
SEC("xdp")
int xdpfwd_redirect_tagged(struct xdp_md *ctx)
{
	return redirect(ctx, 1);
}

char __license[] SEC("license") = "Dual MIT/GPL";
