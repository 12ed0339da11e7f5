// Package fastpath is the core of xdpfwd's dataplane: workers that move
// frames between the AF_XDP queues of ports, the hooks where stages sit,
// and the pipeline that runs them. Subsystems (the bridge in
// fastpath/bridge, the router in fastpath/router; next rules, conntrack,
// NAT) are packages of their own that give each worker stages at hooks.
//
// One packet's walk through the code (ARCHITECTURE.md tells it whole):
//
//	Worker.Run                  worker.go, thread.go: one locked OS thread,
//	                            SCHED_FIFO while it has headroom
//	Worker.Poll                 worker.go
//	  watch                     faults.go: ports down, TX rings that stopped
//	                            completing, egress frame limits
//	  complete, refill          completion ring → free list → fill ring
//	  receive                   RX ring → Batch (Packet.Reset: Addr, InPort)
//	    Pipeline.RunIngress     pipeline.go: the hooks before the copies
//	      HookIngress           Parse (parse.go): tags, L3/L4, flow key
//	      HookBridgePrerouting  bridge.Forwarding: learn, FDB → port/group,
//	                            or to the router (Routed)
//	      HookPrerouting …      fastpath/router: routing decision, input,
//	      HookPostrouting       output, neighbour and L2 rewrite
//	    expand                  drops freed and counted on the ingress port;
//	                            a copy per output port (the frame itself for
//	                            the last)
//	    Pipeline.RunOutput      the per-output hooks, once per copy
//	      HookBridgeForward     bridge.VLANEgress: tag/untag for the port
//	      HookBridgePostrouting
//	      HookEgress            ChecksumFinish (checksum.go)
//	    flush                   drops counted on the output port; too long
//	                            for the device → dropped; staged per queue
//	    transmit                one Transmit per egress queue; refused → free
//
// Stages only write into packet metadata what happens (Action, Reason)
// and where the packet goes (Egress); what they send of their own they
// emit into the batch (Batch.Emit). The Pipeline owns cost accounting
// and tracing; the Worker owns frames, rings and counters. A frame is
// always in exactly one place: the UMEM's free list, a queue's ring, or
// the worker (Worker.Held).
package fastpath
