package bridge

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Short names for the shared test frames and MACs.
var (
	macA, macB, macC, macD = fastpathtest.MACA, fastpathtest.MACB, fastpathtest.MACC, fastpathtest.MACD
	bcast, mcast           = fastpathtest.Broadcast, fastpathtest.Multicast

	rawFrame             = fastpathtest.RawFrame
	arpRequest, arpReply = fastpathtest.ARPRequest, fastpathtest.ARPReply
	udp4, tcp6           = fastpathtest.UDP4, fastpathtest.TCP6
	makePartial, sec     = fastpathtest.MakePartial, fastpathtest.Sec
)

// The bridges are a subsystem.
var _ fastpath.Subsystem = (*Set)(nil)

// newRig returns a rig of the bridges of cfgs, with their stages and
// checksum finishing, one fake queue per bridge port.
func newRig(t testing.TB, c fastpathtest.RigConfig, cfgs ...Config) (*fastpathtest.Rig, *Set) {
	t.Helper()
	groups := &fastpath.PortGroups{}
	bs, err := NewSet(groups, cfgs...)
	if err != nil {
		t.Fatal(err)
	}
	if c.Ports == nil {
		for _, b := range cfgs {
			c.Ports = append(c.Ports, b.Ports...)
		}
	}
	c.Stages, c.Groups, c.Checksum = bs.Stages(), groups, true
	return fastpathtest.NewRig(t, c), bs
}

// pipeline returns the pipeline of a worker of bs: Parse, the bridge's
// stages, checksum finishing.
func pipeline(bs *Set) *fastpath.Pipeline {
	return fastpath.NewPipeline(append(bs.Stages(), fastpath.CoreStages(&fastpath.ChecksumFinish{})...)...)
}
