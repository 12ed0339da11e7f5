package nftnl

import (
	"strconv"
	"strings"

	"github.com/xdpfwd/xdpfwd/fastpath/rules"
)

// ruleKey names a rule: handles are unique within a table.
type ruleKey struct {
	family rules.Family
	table  string
	handle uint64
}

var familyByName = map[string]rules.Family{
	"inet": rules.FamilyInet, "ip": rules.FamilyIP, "arp": rules.FamilyARP,
	"netdev": rules.FamilyNetdev, "bridge": rules.FamilyBridge, "ip6": rules.FamilyIP6,
}

// ruleTexts reads the output of `nft -a list ruleset`: each rule's text
// by its table and handle. nft prints a table as
//
//	table inet t { # handle 1
//		chain in { # handle 2
//			type filter hook input priority filter; policy drop;
//			ip saddr 10.0.0.0/8 accept # handle 6
//			jump {
//				counter packets 0 bytes 0
//				return
//			} # handle 7
//		}
//	}
//
// one rule per line, indented by two tabs inside a chain, but for an
// anonymous chain's body, which this joins into one line:
// "jump { counter packets 0 bytes 0; return }".
func ruleTexts(out string) map[ruleKey]string {
	texts := make(map[ruleKey]string)
	var (
		cur     ruleKey
		inChain bool
		pending []string // the lines of a rule that spans several
		depth   int      // braces open in pending
	)
	for line := range strings.Lines(out) {
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "table "):
			f := strings.Fields(line)
			if len(f) >= 3 {
				cur = ruleKey{family: familyByName[f[1]], table: strings.Trim(f[2], `"`)}
			}
			inChain = false
		case strings.HasPrefix(line, "\tchain "):
			inChain, pending, depth = true, nil, 0
		case line == "\t}":
			inChain = false
		case inChain && strings.HasPrefix(line, "\t\t"):
			text, handle, ok := cutHandle(strings.TrimSpace(line))
			depth += braces(text)
			pending = append(pending, text)
			if depth > 0 {
				continue
			}
			if ok {
				texts[ruleKey{cur.family, cur.table, handle}] = joinLines(pending)
			}
			pending, depth = nil, 0
		}
	}
	return texts
}

// cutHandle splits "TEXT # handle N".
func cutHandle(line string) (string, uint64, bool) {
	i := strings.LastIndex(line, " # handle ")
	if i < 0 {
		return line, 0, false
	}
	h, err := strconv.ParseUint(line[i+len(" # handle "):], 10, 64)
	if err != nil {
		return line, 0, false
	}
	return line[:i], h, true
}

// braces counts "{" less "}" outside quoted strings.
func braces(s string) int {
	n, quoted := 0, false
	for _, c := range s {
		switch {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '{':
			n++
		case c == '}':
			n--
		}
	}
	return n
}

// joinLines joins a rule's lines: statements within braces by "; ".
func joinLines(lines []string) string {
	var b strings.Builder
	for i, l := range lines {
		switch {
		case i == 0:
		case strings.HasSuffix(lines[i-1], "{") || l == "}" || strings.HasPrefix(l, "}"):
			b.WriteByte(' ')
		default:
			b.WriteString("; ")
		}
		b.WriteString(l)
	}
	return b.String()
}
