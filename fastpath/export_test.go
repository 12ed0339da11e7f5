package fastpath

// For the external tests (package fastpath_test).

// PollFDs returns how many file descriptors w blocks on when idle.
func PollFDs(w *Worker) int { return len(w.pollFDs) }

// TxInFlight reports whether w has frames on TX rings not yet completed.
func TxInFlight(w *Worker) bool { return w.txInFlight() }

// ParsePacket decodes p as the Parse stage does.
func ParsePacket(p *Packet) { parse(p, true) }

// TxStallKicks is how many kicks a TX ring gets before it may be stalled.
const TxStallKicks = txStallKicks

// TraceGeneration returns the generation of the worker's last traced
// batch (Meta.Trace's high byte).
func (w *Worker) TraceGeneration() uint16 { return w.tracing.gen }
