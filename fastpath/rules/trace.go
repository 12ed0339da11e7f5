package rules

import "github.com/xdpfwd/xdpfwd/fastpath"

// What a traced packet met in the chains, for the trace's steps, as
// `nft monitor trace` prints it: each rule whose expressions all matched,
// with the verdict it left ("(verdict continue)" for one without), and
// the policy of a base chain that ran to its end.

// maxRuleHits bounds the rules a traced packet's step lists per stage.
const maxRuleHits = 12

// ruleHit is one rule a traced packet matched (rule ≥ 0, an index in
// Program.rules), or a base chain's policy (rule < 0, chain an index in
// Program.chains).
type ruleHit struct {
	rule  int32
	chain int32
	v     vkind
}

// ruleHits are the hits of the traced packets of a batch, by their
// record's index in the batch (Meta.Trace's low byte).
type ruleHits struct {
	n    [fastpath.BatchSize + fastpath.MaxEmitted + 1]uint8
	hits [fastpath.BatchSize + fastpath.MaxEmitted + 1][maxRuleHits]ruleHit
	// more counts the hits beyond maxRuleHits.
	more [fastpath.BatchSize + fastpath.MaxEmitted + 1]uint8
	// any marks hits recorded since the last reset: a packet whose
	// step was not explained (its record full) leaves its hits, which
	// the next batch must not inherit.
	any bool
}

// reset forgets the hits of the last batch, if it had any.
func (h *ruleHits) reset() {
	if h.any {
		h.n, h.more, h.any = [len(h.n)]uint8{}, [len(h.more)]uint8{}, false
	}
}

// hit records h for traced packet pk.
func (w *worker) hit(pk *fastpath.Packet, h ruleHit) {
	i := int(pk.Trace & 0xff)
	if i >= len(w.hits.n) {
		return
	}
	w.hits.any = true
	if n := w.hits.n[i]; n < maxRuleHits {
		w.hits.hits[i][n] = h
		w.hits.n[i]++
	} else if w.hits.more[i] < 255 {
		w.hits.more[i]++
	}
}

// explain writes what traced packet pk met in the chains since the last
// explain, and forgets it.
func (w *worker) explain(pk *fastpath.Packet, n *fastpath.Note) {
	i := int(pk.Trace & 0xff)
	p := w.prog
	if i >= len(w.hits.n) || p == nil {
		return
	}
	for j, h := range w.hits.hits[i][:w.hits.n[i]] {
		if j > 0 {
			n.Str("; ")
		}
		if h.rule >= 0 && int(h.rule) < len(p.rules) {
			r := &p.rules[h.rule]
			noteChain(n, r.family, r.table, r.chain)
			n.Str(" handle ")
			n.Uint(r.handle)
			n.Str(" rule ")
			n.Str(r.text)
			n.Str(" (verdict ")
			n.Str(vkindNames[h.v])
			n.Str(")")
			continue
		}
		if int(h.chain) < len(p.chains) {
			c := &p.chains[h.chain]
			noteChain(n, c.family, c.table, c.name)
			n.Str(" policy ")
			n.Str(vkindNames[h.v])
		}
	}
	if m := w.hits.more[i]; m > 0 {
		n.Str("; and ")
		n.Uint(uint64(m))
		n.Str(" more")
	}
	w.hits.n[i], w.hits.more[i] = 0, 0
}

// noteChain writes a chain's name as nft's trace does: "inet filter
// forward".
func noteChain(n *fastpath.Note, f Family, table, chain string) {
	n.Str(f.String())
	n.Str(" ")
	n.Str(table)
	n.Str(" ")
	n.Str(chain)
}

// vkindNames are the verdicts as nft's trace names them.
var vkindNames = [...]string{vContinue: "continue", vBreak: "continue", vAccept: "accept", vDrop: "drop", vJump: "jump", vGoto: "goto", vReturn: "return"}

// Explain says which rules of the hook's chains p matched.
func (s *stage) Explain(p *fastpath.Packet, n *fastpath.Note) { s.w.explain(p, n) }

// Explain says which rules of the hook's nat chains p matched.
func (s *natStage) Explain(p *fastpath.Packet, n *fastpath.Note) { s.w.explain(p, n) }
