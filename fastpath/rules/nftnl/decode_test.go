package nftnl

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"

	"github.com/xdpfwd/xdpfwd/fastpath/rules"
)

// Messages built here follow the kernel's layout: nfgenmsg, then
// attributes, numbers in network byte order, nested attributes flagged.

func nlattr(t uint16, data []byte) netlink.Attribute { return netlink.Attribute{Type: t, Data: data} }

func nest(t uint16, as ...netlink.Attribute) netlink.Attribute {
	return netlink.Attribute{Type: t | netlink.Nested, Data: marshal(as...)}
}

func marshal(as ...netlink.Attribute) []byte {
	b, err := netlink.MarshalAttributes(as)
	if err != nil {
		panic(err)
	}
	return b
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
func cstr(s string) []byte { return append([]byte(s), 0) }

func expr(name string, as ...netlink.Attribute) netlink.Attribute {
	return nest(listElem, nlattr(exprName, cstr(name)), nest(exprData, as...))
}

func ruleMsg(handle uint64, exprs ...netlink.Attribute) []byte {
	return append([]byte{byte(rules.FamilyIP), 0, 0, 0}, marshal(
		nlattr(ruleTable, cstr("t")), nlattr(ruleChain, cstr("c")), nlattr(ruleHandle, be64(handle)),
		nest(ruleExpressions, exprs...))...)
}

// tcpDport22 is `tcp dport 22 accept` in an ip table.
func tcpDport22() []byte {
	return ruleMsg(4,
		expr("meta", nlattr(metaKey, be32(uint32(rules.MetaL4Proto))), nlattr(metaDReg, be32(1))),
		expr("cmp", nlattr(cmpSReg, be32(1)), nlattr(cmpOp, be32(0)), nest(cmpData, nlattr(dataValue, []byte{6}))),
		expr("payload", nlattr(payloadDReg, be32(1)), nlattr(payloadBase, be32(2)), nlattr(payloadOffset, be32(2)),
			nlattr(payloadLen, be32(2))),
		expr("cmp", nlattr(cmpSReg, be32(1)), nlattr(cmpOp, be32(0)), nest(cmpData, nlattr(dataValue, []byte{0, 22}))),
		expr("immediate", nlattr(immediateDReg, be32(0)),
			nest(immediateData, nest(dataVerdict, nlattr(verdictCode, be32(nfAccept))))),
	)
}

func TestDecodeRule(t *testing.T) {
	f, table, chain, r, err := decodeRule(tcpDport22())
	if err != nil {
		t.Fatal(err)
	}
	if f != rules.FamilyIP || table != "t" || chain != "c" || r.Handle != 4 {
		t.Errorf("got %s %s %s %d", f, table, chain, r.Handle)
	}
	want := []rules.Expr{
		&rules.Meta{Key: rules.MetaL4Proto, DReg: rules.Reg1},
		&rules.Cmp{Op: rules.CmpEq, SReg: rules.Reg1, Data: []byte{6}},
		&rules.Payload{Base: rules.PayloadTransport, Offset: 2, Len: 2, DReg: rules.Reg1},
		&rules.Cmp{Op: rules.CmpEq, SReg: rules.Reg1, Data: []byte{0, 22}},
		&rules.Immediate{DReg: rules.RegVerdict, Verdict: rules.Verdict{Kind: rules.VerdictAccept}},
	}
	if !reflect.DeepEqual(r.Exprs, want) {
		t.Errorf("got %s", r)
	}
}

// TestDecodeRefuses: what the decoder does not understand is an error
// naming the rule, never skipped.
func TestDecodeRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  []byte
		want string
	}{
		{"unknown expression", ruleMsg(7, expr("bogus", nlattr(1, be32(1)))), `expression "bogus" not understood`},
		{"unknown attribute", ruleMsg(7, expr("counter", nlattr(counterBytes, be64(1)), nlattr(counterPackets, be64(1)),
			nlattr(9, be32(0)))), "counter: attribute 9 not understood"},
		{"missing attribute", ruleMsg(7, expr("cmp", nlattr(cmpSReg, be32(1)), nlattr(cmpOp, be32(0)))),
			"cmp: attribute 3 missing"},
		{"bad length", ruleMsg(7, expr("meta", nlattr(metaKey, []byte{3}), nlattr(metaDReg, be32(1)))),
			"meta: attribute 2: 1 bytes, want 4"},
		{"unknown operator", ruleMsg(7, expr("cmp", nlattr(cmpSReg, be32(1)), nlattr(cmpOp, be32(9)),
			nest(cmpData, nlattr(dataValue, []byte{1})))), "cmp: attribute 2: value 9 not understood"},
		{"bad register", ruleMsg(7, expr("meta", nlattr(metaKey, be32(3)), nlattr(metaDReg, be32(5)))),
			"register 5 does not exist"},
		{"unknown verdict", ruleMsg(7, expr("immediate", nlattr(immediateDReg, be32(0)),
			nest(immediateData, nest(dataVerdict, nlattr(verdictCode, be32(2)))))), "verdict code 2 not understood"},
		{"unknown rule attribute", append(ruleMsg(7), marshal(nlattr(ruleCompat, nil))...), "attribute 5 not understood"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, _, err := decodeRule(tc.msg)
			var re *RuleError
			if !errors.As(err, &re) || re.Handle != 7 || re.Table != "t" || re.Chain != "c" ||
				!strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a RuleError for handle 7 with %q", err, tc.want)
			}
		})
	}
}

// TestDecodeRuleText: a rule that does not decode is named with its text.
func TestDecodeRuleText(t *testing.T) {
	m := &messages{
		tables: [][]byte{append([]byte{byte(rules.FamilyIP), 0, 0, 0}, marshal(nlattr(tableName, cstr("t")))...)},
		chains: [][]byte{append([]byte{byte(rules.FamilyIP), 0, 0, 0}, marshal(
			nlattr(chainTable, cstr("t")), nlattr(chainName, cstr("c")), nlattr(chainHandle, be64(1)))...)},
		rules: [][]byte{tcpDport22(), ruleMsg(9, expr("bogus"))},
	}
	_, err := m.decode(map[ruleKey]string{{rules.FamilyIP, "t", 9}: "bogus thing accept"})
	want := `table ip t, chain c, rule handle 9 (bogus thing accept): expression 1: expression "bogus" not understood`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	m.rules = m.rules[:1]
	rs, err := m.decode(map[ruleKey]string{{rules.FamilyIP, "t", 4}: "tcp dport 22 accept"})
	if err != nil {
		t.Fatal(err)
	}
	if r := rs.Tables[0].Chains[0].Rules[0]; r.Text != "tcp dport 22 accept" || len(r.Exprs) != 5 {
		t.Errorf("rule %q %s", r.Text, r)
	}
}

func TestRuleTexts(t *testing.T) {
	listing := `table inet t { # handle 1
	set s { # handle 3
		type ipv4_addr
		elements = { 1.2.3.4 }
	}

	chain in { # handle 2
		type filter hook input priority filter; policy drop;
		ip saddr 10.0.0.0/8 accept # handle 6
		log prefix "{ # handle 99" # handle 7
		jump {
			counter packets 0 bytes 0
			return
		} # handle 8
	}
}
table ip t { # handle 2
	chain c { # handle 1
		accept # handle 6
	}
}
`
	got := ruleTexts(listing)
	want := map[ruleKey]string{
		{rules.FamilyInet, "t", 6}: "ip saddr 10.0.0.0/8 accept",
		{rules.FamilyInet, "t", 7}: `log prefix "{ # handle 99"`,
		{rules.FamilyInet, "t", 8}: "jump { counter packets 0 bytes 0; return }",
		{rules.FamilyIP, "t", 6}:   "accept",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

// The fuzz targets start from the kernel's own messages, captured into
// testdata/fuzz by TestCaptureSeeds, and from the messages built above.

func FuzzDecodeRule(f *testing.F) {
	f.Add(tcpDport22())
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, _, _, r, err := decodeRule(b); err == nil {
			_ = r.String()
		}
	})
}

func FuzzDecodeSetElems(f *testing.F) {
	jumpWeb := nest(dataVerdict, nlattr(verdictCode, be32(uint32(0xfffffffd))), nlattr(verdictChain, cstr("web")))
	elem := nest(listElem, nest(elemKey, nlattr(dataValue, []byte{0, 22})), nest(elemData, jumpWeb))
	f.Add(append([]byte{byte(rules.FamilyIP), 0, 0, 0}, marshal(nlattr(elemListTable, cstr("t")),
		nlattr(elemListSet, cstr("s")), nest(elemListElements, elem))...))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, _, _, elems, err := decodeSetElems(b); err == nil {
			for _, e := range elems {
				_ = e.String()
			}
		}
	})
}

// TestSeedsDecode decodes the captured kernel messages: every one must.
func TestSeedsDecode(t *testing.T) {
	for target, dec := range map[string]func([]byte) error{
		"FuzzDecodeRule": func(b []byte) error { _, _, _, _, err := decodeRule(b); return err },
		"FuzzDecodeSetElems": func(b []byte) error {
			_, _, _, _, err := decodeSetElems(b)
			return err
		},
	} {
		files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
		if len(files) == 0 {
			t.Errorf("no seeds for %s: run XDPFWD_CAPTURE_SEEDS=1 go test -run TestCaptureSeeds as root", target)
		}
		for _, p := range files {
			b, err := readSeed(p)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if err := dec(b); err != nil {
				t.Errorf("%s: %v", p, err)
			}
		}
	}
}

func readSeed(p string) ([]byte, error) {
	raw, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" {
		return nil, fmt.Errorf("not a seed file")
	}
	s, ok := strings.CutPrefix(lines[1], "[]byte(")
	s, ok2 := strings.CutSuffix(s, ")")
	if !ok || !ok2 {
		return nil, fmt.Errorf("not a []byte seed")
	}
	v, err := strconv.Unquote(s)
	return []byte(v), err
}

// TestCaptureSeeds writes the kernel's messages for two rulesets as seed
// files and reads them back: into testdata/fuzz with
// XDPFWD_CAPTURE_SEEDS=1 (to refresh the seeds), else into a temporary
// directory.
func TestCaptureSeeds(t *testing.T) {
	privileged(t)
	root := t.TempDir()
	if os.Getenv("XDPFWD_CAPTURE_SEEDS") != "" {
		root = "testdata"
	}
	var captured []*messages
	testHookMessages = func(m *messages) { captured = append(captured, m) }
	defer func() { testHookMessages = nil }()
	load(t, everything, "lan0", "wan0")
	load(t, `
table inet t {
	set s { type ipv4_addr; flags interval; elements = { 10.0.0.0/8, 192.168.1.1 }; }
	chain web { }
	chain c {
		type filter hook input priority 0;
		ip saddr 10.0.0.0/8 accept
		tcp dport { 22, 80 } counter accept
		meta mark 10-20 drop
		meta mark != 10-20 drop
		ip daddr . tcp dport { 1.2.3.4 . 80 } accept
		tcp dport vmap { 22 : accept, 80 : jump web }
		iifname "lan*" accept
		limit rate 10/second burst 5 packets accept
		log prefix "x"
		iif "lan0" accept
		reject with icmp type port-unreachable
		tcp dport 22 reject with tcp reset
		quota 1000 bytes drop
		meta mark set 7
		ct state established accept
		ip saddr != @s drop
	}
	chain post {
		type nat hook postrouting priority srcnat;
		snat ip to 1.2.3.4
		oifname "lan0" masquerade
	}
	chain pre {
		type nat hook prerouting priority dstnat;
		tcp dport 81 redirect to :8081
	}
}
`, "lan0")
	for target, pick := range map[string]func(*messages) [][]byte{
		"FuzzDecodeRule":     func(m *messages) [][]byte { return m.rules },
		"FuzzDecodeSetElems": func(m *messages) [][]byte { return m.elems },
	} {
		dir := filepath.Join(root, "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, m := range captured {
			for _, b := range pick(m) {
				name := fmt.Sprintf("%x", sha256.Sum256(b))[:16]
				seed := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, []byte(seed), 0o644); err != nil {
					t.Fatal(err)
				}
				if back, err := readSeed(p); err != nil || string(back) != string(b) {
					t.Fatalf("%s does not read back: %v", p, err)
				}
			}
		}
	}
}
