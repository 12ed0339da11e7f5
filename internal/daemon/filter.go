package daemon

import (
	"fmt"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/cbpf"
)

// compileFilter compiles a classic BPF program as the control socket
// carries it (op, jt, jf, k: tcpdump -ddd's numbers); nil for none. A
// filter that is interpreted rather than run as machine code is logged:
// it costs several times more per packet.
func (d *Daemon) compileFilter(raw [][4]uint32) (*cbpf.Program, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	prog := make([]cbpf.Instruction, len(raw))
	for i, in := range raw {
		if in[0] > 0xffff || in[1] > 0xff || in[2] > 0xff {
			return nil, fmt.Errorf("instruction %d out of range", i)
		}
		prog[i] = cbpf.Instruction{Op: uint16(in[0]), Jt: uint8(in[1]), Jf: uint8(in[2]), K: in[3]}
	}
	p, err := cbpf.Compile(prog)
	if err != nil {
		return nil, err
	}
	if why := p.Interpreted(); why != nil {
		d.log.Warn("the filter runs in the interpreter", "reason", why)
	}
	return p, nil
}

// portByName returns the port whose interface is name, AnyPort for "".
func (d *Daemon) portByName(name string) (fastpath.PortID, error) {
	if name == "" {
		return fastpath.AnyPort, nil
	}
	for _, p := range d.ports {
		if p.cfg.Interface == name {
			return p.id, nil
		}
	}
	return 0, fmt.Errorf("%q is not a port of this daemon", name)
}
