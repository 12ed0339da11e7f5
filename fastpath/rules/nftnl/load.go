package nftnl

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mdlayher/netlink"
	vnl "github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdpfwd/xdpfwd/fastpath/rules"
)

// Options tune Load.
type Options struct {
	// Interfaces are the names to create stand-in interfaces for, so
	// that rules naming them by index (iif, oif) load: xdpfwd's ports
	// and bridges. Names the rules do not use cost nothing.
	Interfaces []string
	// Nft is the nft binary; empty looks "nft" up in PATH.
	Nft string
	// After is nft script applied after the file, in the same
	// transaction (e.g. "add element inet filter blocklist { 192.0.2.1 }"
	// lines: the set changes made since the file was loaded). nft names
	// its lines "(changes)" in errors.
	After string
}

// NftError is nft's own complaint about a ruleset file: its messages,
// which name the file, line and column.
type NftError struct {
	Args   []string // nft's arguments
	Output string   // what nft printed, trimmed
}

// Error returns nft's messages.
func (e *NftError) Error() string { return e.Output }

// Load loads the ruleset file at path into the kernel the way `nft -f`
// does, in a throwaway network namespace, and returns the kernel's
// compiled form. The namespace holds a stand-in interface for each name
// in opts.Interfaces and nothing else; it is gone when Load returns, and
// the calling goroutine's thread never leaves its own namespace.
//
// A file nft refuses returns a *NftError with nft's messages; a rule with
// an expression or attribute this package does not understand returns a
// *RuleError naming it.
func Load(path string, opts Options) (*rules.Ruleset, error) {
	nft, err := lookNft(opts.Nft)
	if err != nil {
		return nil, err
	}
	type result struct {
		rs  *rules.Ruleset
		err error
	}
	done := make(chan result, 1)
	go func() {
		// Never unlocked: when this goroutine ends, Go ends the thread
		// with it, whatever namespace it is in.
		runtime.LockOSThread()
		rs, err := loadInNetns(nft, path, opts)
		done <- result{rs, err}
	}()
	r := <-done
	return r.rs, r.err
}

func lookNft(nft string) (string, error) {
	if nft == "" {
		nft = "nft"
	}
	p, err := exec.LookPath(nft)
	if err != nil {
		return "", fmt.Errorf("ruleset: %w (install the Debian package nftables)", err)
	}
	return p, nil
}

// Test hooks: when set, they see the inode of the throwaway namespace and
// the kernel's messages.
var (
	testHookNetns    func(ino uint64)
	testHookMessages func(*messages)
)

// loadInNetns runs on a locked thread that it moves into a new network
// namespace, and back to the thread's own before it returns, so that the
// namespace is freed before Load returns.
func loadInNetns(nft, path string, opts Options) (*rules.Ruleset, error) {
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, fmt.Errorf("ruleset: %w", err)
	}
	defer orig.Close()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("ruleset: creating a network namespace: %w", err)
	}
	defer func() {
		// Best effort: if it fails the thread still ends with Load.
		_ = unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET)
	}()
	if testHookNetns != nil {
		var st unix.Stat_t
		if unix.Stat("/proc/thread-self/ns/net", &st) == nil {
			testHookNetns(st.Ino)
		}
	}

	ifaces, err := standIns(opts.Interfaces)
	if err != nil {
		return nil, err
	}
	if opts.After == "" {
		if _, err := runNft(nft, "-f", path); err != nil {
			return nil, err
		}
	} else if err := loadWithChanges(nft, path, opts.After); err != nil {
		return nil, err
	}
	// The listings run while the netlink dumps do: the text gives each
	// rule's text, and both are what `xdpfwd rules list` prints.
	wait, err := startNft(nft, "-a", "list", "ruleset")
	if err != nil {
		return nil, err
	}
	waitJSON, err := startNft(nft, "-j", "list", "ruleset")
	if err != nil {
		_, _ = wait()
		return nil, err
	}
	msgs, err := dump()
	listing, lerr := wait()
	listingJSON, jerr := waitJSON()
	if err != nil {
		return nil, fmt.Errorf("ruleset: reading back from the kernel: %w", err)
	}
	if lerr != nil {
		return nil, lerr
	}
	if jerr != nil {
		return nil, jerr
	}
	if testHookMessages != nil {
		testHookMessages(msgs)
	}
	rs, err := msgs.decode(ruleTexts(listing))
	if err != nil {
		return nil, err
	}
	rs.Interfaces = ifaces
	rs.Listing, rs.ListingJSON = listing, listingJSON
	return rs, nil
}

// loadWithChanges loads path and then the script after in one nft -f
// run (one transaction): a script that includes the file, then after.
func loadWithChanges(nft, path, after string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("ruleset: %w", err)
	}
	dir, err := os.MkdirTemp("", "xdpfwd-nft-")
	if err != nil {
		return fmt.Errorf("ruleset: %w", err)
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "(changes)")
	if err := os.WriteFile(script, []byte("include \""+abs+"\"\n"+after+"\n"), 0o600); err != nil {
		return fmt.Errorf("ruleset: %w", err)
	}
	_, err = runNft(nft, "-f", script)
	var ne *NftError
	if errors.As(err, &ne) {
		ne.Output = strings.ReplaceAll(ne.Output, script, "(changes)")
	}
	return err
}

// standIns creates an interface for each name (the kind "dummy" where the
// kernel has it, else "ifb", else "bridge") and returns their ifindexes.
func standIns(names []string) (map[uint32]string, error) {
	ifaces := make(map[uint32]string)
	kinds := []func(vnl.LinkAttrs) vnl.Link{
		func(a vnl.LinkAttrs) vnl.Link { return &vnl.Dummy{LinkAttrs: a} },
		func(a vnl.LinkAttrs) vnl.Link { return &vnl.Ifb{LinkAttrs: a} },
		func(a vnl.LinkAttrs) vnl.Link { return &vnl.Bridge{LinkAttrs: a} },
	}
	for _, name := range names {
		if l, err := vnl.LinkByName(name); err == nil { // lo, or a duplicate
			ifaces[uint32(l.Attrs().Index)] = name
			continue
		}
		var err error
		for len(kinds) > 0 {
			if err = vnl.LinkAdd(kinds[0](vnl.LinkAttrs{Name: name})); err == nil {
				break
			}
			if !errors.Is(err, unix.EOPNOTSUPP) {
				return nil, fmt.Errorf("ruleset: stand-in interface %q: %w", name, err)
			}
			kinds = kinds[1:]
		}
		if err != nil {
			return nil, fmt.Errorf("ruleset: stand-in interface %q: %w", name, err)
		}
		l, err := vnl.LinkByName(name)
		if err != nil {
			return nil, fmt.Errorf("ruleset: stand-in interface %q: %w", name, err)
		}
		ifaces[uint32(l.Attrs().Index)] = name
	}
	return ifaces, nil
}

const noInterfaceHint = "iif and oif name interfaces that must exist when the ruleset loads: " +
	"the ports and bridges of xdpfwd's config; iifname and oifname match any name"

// runNft runs nft in the thread's network namespace and returns what it
// printed.
func runNft(nft string, args ...string) (string, error) {
	wait, err := startNft(nft, args...)
	if err != nil {
		return "", err
	}
	return wait()
}

// startNft starts nft in the thread's network namespace (a child process
// inherits the namespace of the thread that starts it); wait waits for it
// and returns what it printed.
func startNft(nft string, args ...string) (wait func() (string, error), err error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(nft, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	fail := func(err error) error {
		out := strings.TrimSpace(stderr.String())
		if out == "" {
			out = fmt.Sprintf("nft %s: %v", strings.Join(args, " "), err)
		}
		if strings.Contains(out, "Interface does not exist") {
			out += "\n" + noInterfaceHint
		}
		return &NftError{Args: args, Output: out}
	}
	if err := cmd.Start(); err != nil {
		return nil, fail(err)
	}
	return func() (string, error) {
		if err := cmd.Wait(); err != nil {
			return "", fail(err)
		}
		return stdout.String(), nil
	}, nil
}

// messages are the payloads of the kernel's dumps, each message's
// nfgenmsg and attributes.
type messages struct {
	tables, chains, sets, elems, objs, rules [][]byte
}

// dump reads the whole ruleset from the kernel in the thread's namespace.
// Sets' elements take one dump per set: they run on a few sockets at
// once.
func dump() (*messages, error) {
	conns := make([]*netlink.Conn, min(runtime.NumCPU(), 4))
	for i := range conns {
		c, err := netlink.Dial(unix.NETLINK_NETFILTER, nil) // in this thread's namespace
		if err != nil {
			return nil, err
		}
		defer c.Close()
		conns[i] = c
	}
	m := &messages{}
	var err error
	for _, d := range []struct {
		msg int
		out *[][]byte
	}{{msgGetTable, &m.tables}, {msgGetChain, &m.chains}, {msgGetSet, &m.sets}, {msgGetObj, &m.objs}, {msgGetRule, &m.rules}} {
		if *d.out, err = get(conns[0], d.msg, 0, nil); err != nil {
			return nil, err
		}
	}
	elems := make([][][]byte, len(m.sets))
	errs := make([]error, len(m.sets))
	var next atomic.Int64
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(m.sets); i = int(next.Add(1) - 1) {
				f, table, s, err := decodeSet(m.sets[i])
				if err == nil {
					elems[i], err = get(c, msgGetSetElem, f, []netlink.Attribute{
						{Type: elemListTable, Data: nulTerminated(table)},
						{Type: elemListSet, Data: nulTerminated(s.Name)},
					})
					if err != nil {
						err = fmt.Errorf("elements of set %s in table %s %s: %w", s.Name, f, table, err)
					}
				}
				errs[i] = err
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	m.elems = slices.Concat(elems...)
	return m, nil
}

// get runs one dump request of nf_tables message type msg.
func get(c *netlink.Conn, msg int, family rules.Family, attrs []netlink.Attribute) ([][]byte, error) {
	b := []byte{byte(family), 0, 0, 0} // nfgenmsg: family, NFNETLINK_V0, res_id
	if attrs != nil {
		ab, err := netlink.MarshalAttributes(attrs)
		if err != nil {
			return nil, err
		}
		b = append(b, ab...)
	}
	replies, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(nfnlSubsysNFTables<<8 | msg),
			Flags: netlink.Request | netlink.Dump},
		Data: b,
	})
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, r := range replies {
		if r.Header.Type&0xff00 == nfnlSubsysNFTables<<8 {
			out = append(out, r.Data)
		}
	}
	return out, nil
}

func nulTerminated(s string) []byte { return append([]byte(s), 0) }

// decode builds the ruleset from the dumps; texts gives each rule's text.
func (m *messages) decode(texts map[ruleKey]string) (*rules.Ruleset, error) {
	type key struct {
		family      rules.Family
		table, name string
	}
	rs := &rules.Ruleset{}
	tables := make(map[key]*rules.Table)
	chains := make(map[key]*rules.Chain)
	sets := make(map[key]*rules.Set)
	table := func(f rules.Family, name string) (*rules.Table, error) {
		if t := tables[key{f, name, ""}]; t != nil {
			return t, nil
		}
		return nil, fmt.Errorf("ruleset: no table %s %s", f, name)
	}
	for _, b := range m.tables {
		t, err := decodeTable(b)
		if err != nil {
			return nil, err
		}
		rs.Tables = append(rs.Tables, t)
		tables[key{t.Family, t.Name, ""}] = t
	}
	for _, b := range m.chains {
		f, tn, c, err := decodeChain(b)
		if err != nil {
			return nil, err
		}
		t, err := table(f, tn)
		if err != nil {
			return nil, err
		}
		t.Chains = append(t.Chains, c)
		chains[key{f, tn, c.Name}] = c
	}
	for _, b := range m.sets {
		f, tn, s, err := decodeSet(b)
		if err != nil {
			return nil, err
		}
		t, err := table(f, tn)
		if err != nil {
			return nil, err
		}
		t.Sets = append(t.Sets, s)
		sets[key{f, tn, s.Name}] = s
	}
	for _, b := range m.elems {
		f, tn, sn, elems, err := decodeSetElems(b)
		if err != nil {
			return nil, err
		}
		s := sets[key{f, tn, sn}]
		if s == nil {
			return nil, fmt.Errorf("ruleset: table %s %s: no set %s", f, tn, sn)
		}
		s.Elements = append(s.Elements, elems...)
	}
	for _, b := range m.objs {
		f, tn, o, err := decodeObj(b)
		if err != nil {
			return nil, err
		}
		t, err := table(f, tn)
		if err != nil {
			return nil, err
		}
		t.Objects = append(t.Objects, o)
	}
	for _, b := range m.rules {
		f, tn, cn, r, err := decodeRule(b)
		if re := (*RuleError)(nil); errors.As(err, &re) {
			re.Text = texts[ruleKey{re.Family, re.Table, re.Handle}]
			return nil, re
		}
		if err != nil {
			return nil, err
		}
		c := chains[key{f, tn, cn}]
		if c == nil {
			return nil, fmt.Errorf("ruleset: table %s %s: no chain %s", f, tn, cn)
		}
		r.Text = texts[ruleKey{f, tn, r.Handle}]
		c.Rules = append(c.Rules, r)
	}
	return rs, nil
}
