package rules

import (
	"encoding/binary"
	"strconv"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// The kernel's printk rate limit, which log lines go through: 10 lines
// per 5 seconds (DEFAULT_RATELIMIT_BURST, DEFAULT_RATELIMIT_INTERVAL).
const (
	logRateBurst    = 10
	logRateInterval = 5 * time.Second / logRateBurst
)

// log writes the line of a log statement to Env.Log, in the format of the
// kernel's nf_log_syslog (its default flags): the prefix, IN= and OUT=,
// the MAC header, the IP header's fields, the transport protocol and its
// ports (or ICMP type and code), the mark. Lines beyond the rate limit are
// dropped, as printk drops them. Only a line written allocates.
func (w *worker) log(p *Program, o *op, c *pktCtx) {
	if p.env.Log == nil || !p.logRate.take(int64(c.now)) {
		return
	}
	b := append(w.line[:0], o.prefix...)
	b = append(b, "IN="...)
	b = appendName(b, p, c.in)
	b = append(b, " OUT="...)
	b = appendName(b, p, c.out)
	b = append(b, ' ')
	d := c.data
	if c.in >= 0 && c.ll {
		b = append(b, "MAC="...)
		mac := [14]byte{}
		copy(mac[:12], d[:12])
		copy(mac[12:], d[c.nh-2:c.nh])
		for i, x := range mac {
			b = appendHex2(b, x)
			if i < len(mac)-1 {
				b = append(b, ':')
			}
		}
		b = append(b, ' ')
	}
	switch c.protocol {
	case header.EtherTypeIPv4:
		if c.nh+header.IPv4MinSize <= c.end {
			b = logIPv4(b, c)
		}
	case header.EtherTypeIPv6:
		if c.nh+header.IPv6Size <= c.end {
			b = logIPv6(b, c)
		}
	default:
		b = append(b, "PROTO="...)
		b = strconv.AppendUint(b, uint64(c.protocol), 10)
		b = append(b, ' ')
	}
	if c.pk.Mark != 0 {
		b = append(b, "MARK=0x"...)
		b = strconv.AppendUint(b, uint64(c.pk.Mark), 16)
		b = append(b, ' ')
	}
	w.line = b
	p.env.Log(string(b))
}

func appendName(b []byte, p *Program, dv int32) []byte {
	if dv < 0 {
		return b
	}
	n := p.devs[dv].name[:]
	for i, x := range n {
		if x == 0 {
			return append(b, n[:i]...)
		}
	}
	return append(b, n...)
}

func appendHex2(b []byte, x byte) []byte {
	const digits = "0123456789abcdef"
	return append(b, digits[x>>4], digits[x&0xf])
}

func appendField(b []byte, name string, v uint64) []byte {
	b = append(b, name...)
	b = strconv.AppendUint(b, v, 10)
	return append(b, ' ')
}

func logIPv4(b []byte, c *pktCtx) []byte {
	ip := c.data[c.nh:]
	b = append(b, "SRC="...)
	b = appendIPv4(b, ip[12:16])
	b = append(b, " DST="...)
	b = appendIPv4(b, ip[16:20])
	b = append(b, ' ')
	b = appendField(b, "LEN=", uint64(binary.BigEndian.Uint16(ip[2:])))
	b = append(b, "TOS=0x"...)
	b = appendHex2Upper(b, ip[1]&0x1e)
	b = append(b, " PREC=0x"...)
	b = appendHex2Upper(b, ip[1]&0xe0)
	b = append(b, ' ')
	b = appendField(b, "TTL=", uint64(ip[8]))
	b = appendField(b, "ID=", uint64(binary.BigEndian.Uint16(ip[4:])))
	fo := binary.BigEndian.Uint16(ip[6:])
	for _, f := range [...]struct {
		bit  uint16
		name string
	}{{0x8000, "CE "}, {0x4000, "DF "}, {0x2000, "MF "}} {
		if fo&f.bit != 0 {
			b = append(b, f.name...)
		}
	}
	if fo&0x1fff != 0 {
		b = append(b, "FRAG:"...)
		b = strconv.AppendUint(b, uint64(fo&0x1fff), 10)
		b = append(b, ' ')
	}
	return logL4(b, c, ip[9], fo&0x1fff != 0, c.nh+int(ip[0]&0xf)*4, header.ProtocolICMP)
}

func logIPv6(b []byte, c *pktCtx) []byte {
	ip := c.data[c.nh:]
	b = append(b, "SRC="...)
	b = appendIPv6(b, ip[8:24])
	b = append(b, " DST="...)
	b = appendIPv6(b, ip[24:40])
	b = append(b, ' ')
	w := binary.BigEndian.Uint32(ip)
	b = appendField(b, "LEN=", uint64(binary.BigEndian.Uint16(ip[4:]))+header.IPv6Size)
	b = appendField(b, "TC=", uint64(w&0x0ff00000>>20))
	b = appendField(b, "HOPLIMIT=", uint64(ip[7]))
	b = appendField(b, "FLOWLBL=", uint64(w&0xfffff))
	if !c.l4 {
		return b
	}
	return logL4(b, c, c.tprot, c.fragoff != 0, c.thoff, header.ProtocolICMPv6)
}

// logL4 writes the transport protocol's fields (nf_log_dump_tcp_header,
// nf_log_dump_udp_header, the ICMP cases).
func logL4(b []byte, c *pktCtx, proto uint8, frag bool, th int, icmp uint8) []byte {
	d := c.data[:c.end]
	incomplete := func(b []byte) []byte {
		b = append(b, "INCOMPLETE ["...)
		b = strconv.AppendUint(b, uint64(max(c.end-th, 0)), 10)
		return append(b, " bytes] "...)
	}
	switch proto {
	case header.ProtocolTCP:
		b = append(b, "PROTO=TCP "...)
		if frag {
			return b
		}
		if th+header.TCPMinSize > len(d) {
			return incomplete(b)
		}
		t := d[th:]
		b = appendField(b, "SPT=", uint64(binary.BigEndian.Uint16(t)))
		b = appendField(b, "DPT=", uint64(binary.BigEndian.Uint16(t[2:])))
		b = appendField(b, "WINDOW=", uint64(binary.BigEndian.Uint16(t[14:])))
		b = append(b, "RES=0x"...)
		b = appendHex2(b, t[12]&0x0f<<2|t[13]>>6)
		b = append(b, ' ')
		for i, name := range [...]string{"CWR ", "ECE ", "URG ", "ACK ", "PSH ", "RST ", "SYN ", "FIN "} {
			if t[13]&(0x80>>i) != 0 {
				b = append(b, name...)
			}
		}
		return appendField(b, "URGP=", uint64(binary.BigEndian.Uint16(t[18:])))
	case header.ProtocolUDP, 136:
		if proto == header.ProtocolUDP {
			b = append(b, "PROTO=UDP "...)
		} else {
			b = append(b, "PROTO=UDPLITE "...)
		}
		if frag {
			return b
		}
		if th+header.UDPSize > len(d) {
			return incomplete(b)
		}
		u := d[th:]
		b = appendField(b, "SPT=", uint64(binary.BigEndian.Uint16(u)))
		b = appendField(b, "DPT=", uint64(binary.BigEndian.Uint16(u[2:])))
		return appendField(b, "LEN=", uint64(binary.BigEndian.Uint16(u[4:])))
	case icmp:
		if icmp == header.ProtocolICMP {
			b = append(b, "PROTO=ICMP "...)
		} else {
			b = append(b, "PROTO=ICMPv6 "...)
		}
		if frag {
			return b
		}
		if th+4 > len(d) {
			return incomplete(b)
		}
		m := d[th:]
		b = appendField(b, "TYPE=", uint64(m[0]))
		b = appendField(b, "CODE=", uint64(m[1]))
		echo := m[0] == header.ICMPv4Echo || m[0] == header.ICMPv4EchoReply
		if icmp == header.ProtocolICMPv6 {
			echo = m[0] == header.ICMPv6EchoRequest || m[0] == header.ICMPv6EchoReply
		}
		if echo && th+8 <= len(d) {
			b = appendField(b, "ID=", uint64(binary.BigEndian.Uint16(m[4:])))
			b = appendField(b, "SEQ=", uint64(binary.BigEndian.Uint16(m[6:])))
		}
		return b
	}
	return appendField(b, "PROTO=", uint64(proto))
}

func appendHex2Upper(b []byte, x byte) []byte {
	const digits = "0123456789ABCDEF"
	return append(b, digits[x>>4], digits[x&0xf])
}

func appendIPv4(b []byte, a []byte) []byte {
	for i, x := range a[:4] {
		if i > 0 {
			b = append(b, '.')
		}
		b = strconv.AppendUint(b, uint64(x), 10)
	}
	return b
}

// appendIPv6 writes a as the kernel's %pI6: eight groups of four hex
// digits.
func appendIPv6(b []byte, a []byte) []byte {
	for i := 0; i < 16; i += 2 {
		if i > 0 {
			b = append(b, ':')
		}
		b = appendHex2(b, a[i])
		b = appendHex2(b, a[i+1])
	}
	return b
}
