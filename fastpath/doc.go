// Package fastpath is the dataplane of xdpfwd: workers that move frames
// between the AF_XDP queues of ports, and the pipeline of stages that
// decides where each frame goes.
//
// One packet's walk through the code (the README's "The packet walk"):
//
//	Worker.Run                       worker.go, thread.go: one locked OS thread,
//	                                 SCHED_FIFO while it has headroom
//	Worker.Poll                      worker.go
//	  watch                          faults.go: ports down, TX rings that stopped
//	                                 completing, egress frame limits
//	  complete, refill               completion ring → free list → fill ring
//	  receive                        RX ring → Batch (Packet: Addr, Data, InPort)
//	    Pipeline.Run                 pipeline.go: each Stage in order, then drop counts
//	      Parse                      parse.go: Ethernet, VLAN tags, L3/L4 offsets, once
//	      BridgeStage                bridge.go: VLAN (VLAN-aware bridges), learn source,
//	                                 look up destination in the shared, lock-free,
//	                                 keyed FDB (fdb.go)
//	      ChecksumFinish             checksum.go: finish partial TCP/UDP/SCTP checksums,
//	                                 tagged and tunnelled ones too
//	    dispatch                     by Verdict: stage for an egress queue,
//	                                 copy for a flood, or free and count; each
//	                                 copy VLAN-tagged for its port (vlan_egress.go),
//	                                 dropped if longer than the egress device takes
//	    transmit                     one Transmit per egress queue; refused → free
//
// Stages only write verdicts into packet metadata. The Pipeline owns cost
// accounting, drop counting and tracing; the Worker owns frames, rings and
// port counters. A frame is always in exactly one place: the UMEM's free
// list, a queue's ring, or the worker (Worker.Held).
package fastpath
