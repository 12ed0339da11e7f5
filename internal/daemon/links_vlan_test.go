package daemon

import (
	"errors"
	"fmt"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/xdpfwd/xdpfwd/bpf"
	"github.com/xdpfwd/xdpfwd/internal/config"
)

// TestMisfitVLAN: a look at an attached port re-runs the VLAN check of
// bpf.Attach, and a refusal (rx-vlan-offload turned on under a port whose
// program cannot put tags back) fails the port with the refusal's words; an
// interface that cannot be read is not a misfit. The check's answer is
// injected: of the devices a namespace here can hold, only veth lets
// ethtool turn rx-vlan-offload on, and a native veth restores tags whatever
// it says (bpf.TestPortRecheck decides over injected features,
// bpf.TestPortCheckVLAN reads real ones).
func TestMisfitVLAN(t *testing.T) {
	refusal := &bpf.VLANError{Reason: "eth7 strips VLAN tags on receive (rx-vlan-offload) and …: ethtool -K eth7 rxvlan off"}
	orig := portVLANCheck
	t.Cleanup(func() { portVLANCheck = orig })
	d := &Daemon{cfg: &config.Config{Options: config.Options{FrameSize: 4096}}, nworkers: 1}
	// No such interface: the queue checks have nothing to say.
	a := &netlink.LinkAttrs{Name: "xfnosuch0", MTU: 1500}
	for _, tc := range []struct {
		name   string
		answer error
		want   string
	}{
		{"still fits", nil, ""},
		{"offload turned on", refusal, refusal.Reason},
		{"offload turned on, wrapped", fmt.Errorf("checking: %w", refusal), refusal.Reason},
		{"interface unreadable", errors.New("checking the VLAN features of eth7: no such device"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var checked *bpf.Port
			portVLANCheck = func(p *bpf.Port) error { checked = p; return tc.answer }
			p := &port{prog: &bpf.Port{}, queues: 1}
			reason, _ := d.misfit(p, a)
			if checked != p.prog {
				t.Fatalf("misfit did not check the port's program")
			}
			if reason != tc.want {
				t.Errorf("misfit = %q, want %q", reason, tc.want)
			}
		})
	}
	// A port not attached (activate looks before bpf.Attach, which checks)
	// is not checked here.
	portVLANCheck = func(*bpf.Port) error { t.Error("checked a port with no program"); return nil }
	if reason, _ := d.misfit(&port{queues: 1}, a); reason != "" {
		t.Errorf("misfit of an unattached port = %q, want \"\"", reason)
	}
}
