package nftnl

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/xdpfwd/xdpfwd/fastpath/rules"
)

// attrs reads one level of netlink attributes strictly: every getter
// marks the attribute it reads, a length that does not fit the type is an
// error, and done reports any attribute nobody read — so an attribute
// this package does not know is an error, never skipped.
type attrs struct {
	parent *attrs // for errors: the path of names
	what   string // "payload", "set elements", …
	as     []attr
	err    error
	buf    [4]attr // as, for most levels without another allocation
}

// attr is one attribute: its type without the flag bits, its data (a
// slice of the message), and whether a getter read it.
type attr struct {
	Type uint16
	used bool
	Data []byte
}

// parseAttrs splits b into attributes; what (under parent) names them in
// errors.
func parseAttrs(parent *attrs, what string, b []byte) *attrs {
	a := &attrs{parent: parent, what: what}
	a.as = a.buf[:0]
	for len(b) > 0 {
		// struct nlattr: nla_len, nla_type, in host byte order.
		if len(b) < 4 {
			a.fail("%d bytes after the last attribute", len(b))
			break
		}
		n := int(binary.NativeEndian.Uint16(b))
		if n < 4 || n > len(b) {
			a.fail("attribute of length %d in %d bytes", n, len(b))
			break
		}
		a.as = append(a.as, attr{Type: binary.NativeEndian.Uint16(b[2:]) & attrTypeMask, Data: b[4:n:n]})
		b = b[min((n+3)&^3, len(b)):]
	}
	return a
}

func (a *attrs) path() string {
	if a.parent == nil {
		return a.what
	}
	return a.parent.path() + ": " + a.what
}

func (a *attrs) fail(format string, args ...any) {
	if a.err == nil {
		a.err = fmt.Errorf("%s: "+format, append([]any{a.path()}, args...)...)
	}
}

// get returns the first unread attribute of type t.
func (a *attrs) get(t uint16) ([]byte, bool) {
	for i := range a.as {
		if at := &a.as[i]; at.Type == t && !at.used {
			at.used = true
			return at.Data, true
		}
	}
	return nil, false
}

func (a *attrs) has(t uint16) bool {
	for _, at := range a.as {
		if at.Type == t && !at.used {
			return true
		}
	}
	return false
}

// skip marks every attribute of type t read: padding, use counts.
func (a *attrs) skip(t uint16) {
	for i := range a.as {
		if a.as[i].Type == t {
			a.as[i].used = true
		}
	}
}

// all returns every unread attribute of type t, in order.
func (a *attrs) all(t uint16) [][]byte {
	var out [][]byte
	for i := range a.as {
		if at := &a.as[i]; at.Type == t && !at.used {
			at.used = true
			out = append(out, at.Data)
		}
	}
	return out
}

func (a *attrs) fixed(t uint16, n int) ([]byte, bool) {
	b, ok := a.get(t)
	if ok && len(b) != n {
		a.fail("attribute %d: %d bytes, want %d", t, len(b), n)
		return nil, false
	}
	return b, ok
}

func (a *attrs) u8(t uint16) uint8 {
	if b, ok := a.fixed(t, 1); ok {
		return b[0]
	}
	return 0
}

func (a *attrs) u16(t uint16) uint16 {
	if b, ok := a.fixed(t, 2); ok {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (a *attrs) u32(t uint16) uint32 {
	if b, ok := a.fixed(t, 4); ok {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (a *attrs) u64(t uint16) uint64 {
	if b, ok := a.fixed(t, 8); ok {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// str reads a NUL-terminated string attribute.
func (a *attrs) str(t uint16) string {
	b, ok := a.get(t)
	if !ok {
		return ""
	}
	s, ok := cstring(b)
	if !ok {
		a.fail("attribute %d: bytes after the string's end", t)
	}
	return s
}

// cstring returns b up to its terminating NUL; false if bytes follow it.
func cstring(b []byte) (string, bool) {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return string(b[:i]), i == len(b)-1
	}
	return string(b), true
}

// bin reads a binary attribute; nil if absent.
func (a *attrs) bin(t uint16) []byte {
	b, ok := a.get(t)
	if !ok {
		return nil
	}
	return bytes.Clone(b)
}

// reg reads a register attribute.
func (a *attrs) reg(t uint16) rules.Register {
	if !a.has(t) {
		return 0
	}
	r := rules.Register(a.u32(t))
	if !r.Valid() {
		a.fail("attribute %d: register %d does not exist", t, uint32(r))
	}
	return r
}

// need records an error for each of ts that is absent.
func (a *attrs) need(ts ...uint16) {
	for _, t := range ts {
		found := false
		for _, at := range a.as {
			if at.Type == t {
				found = true
				break
			}
		}
		if !found {
			a.fail("attribute %d missing", t)
		}
	}
}

// nested decodes the attribute of type t with fn; false if absent.
func (a *attrs) nested(t uint16, what string, fn func(*attrs)) bool {
	b, ok := a.get(t)
	if !ok {
		return false
	}
	n := parseAttrs(a, what, b)
	fn(n)
	if err := n.done(); err != nil && a.err == nil {
		a.err = err
	}
	return true
}

// data reads a nested nft_data attribute holding a value.
func (a *attrs) data(t uint16) []byte {
	var v []byte
	a.nested(t, "data", func(n *attrs) {
		b, ok := n.get(dataValue)
		if !ok {
			n.fail("no value")
		}
		v = bytes.Clone(b)
		if v == nil {
			v = []byte{}
		}
	})
	return v
}

// dataOrVerdict reads a nested nft_data attribute holding a value or a
// verdict.
func (a *attrs) dataOrVerdict(t uint16) (v []byte, vd rules.Verdict, ok bool) {
	ok = a.nested(t, "data", func(n *attrs) {
		switch {
		case n.has(dataValue):
			v = n.bin(dataValue)
			if v == nil {
				v = []byte{}
			}
		case n.has(dataVerdict):
			n.nested(dataVerdict, "verdict", func(vn *attrs) { vd = decodeVerdict(vn) })
		default:
			n.fail("neither value nor verdict")
		}
	})
	return v, vd, ok
}

func decodeVerdict(a *attrs) rules.Verdict {
	a.need(verdictCode)
	code := int32(a.u32(verdictCode))
	var v rules.Verdict
	switch code {
	case nfAccept:
		v.Kind = rules.VerdictAccept
	case nfDrop:
		v.Kind = rules.VerdictDrop
	case nfQueue:
		v.Kind = rules.VerdictQueue
	case nftContinue:
		v.Kind = rules.VerdictContinue
	case nftBreak:
		v.Kind = rules.VerdictBreak
	case nftReturn:
		v.Kind = rules.VerdictReturn
	case nftJump, nftGoto:
		v.Kind = rules.VerdictJump
		if code == nftGoto {
			v.Kind = rules.VerdictGoto
		}
		a.need(verdictChain)
		v.Chain = a.str(verdictChain)
	default:
		a.fail("verdict code %d not understood", code)
	}
	return v
}

// done returns the first error, or an error naming the first attribute
// nobody read.
func (a *attrs) done() error {
	if a.err != nil {
		return a.err
	}
	for _, at := range a.as {
		if !at.used {
			return fmt.Errorf("%s: attribute %d not understood", a.path(), at.Type)
		}
	}
	return nil
}
