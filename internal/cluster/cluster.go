// Package cluster describes the cluster map: the chunkservers a metaserver
// knows, their addresses, weights and states, and an epoch that changes
// with every membership change. Clients place blocks from the map alone.
package cluster

// State says whether a chunkserver takes part in placement.
type State uint8

const (
	// Up: the node heartbeats and takes new blocks.
	Up State = iota
	// Down: the node missed heartbeats; reads skip it, writes go elsewhere.
	Down
	// Draining: an operator asked the node to leave; it takes no new
	// blocks and the rebalancer moves its blocks to the others. Reads
	// still try it last.
	Draining
)

func (s State) String() string {
	switch s {
	case Up:
		return "up"
	case Down:
		return "down"
	case Draining:
		return "draining"
	}
	return "unknown"
}

// Node is one chunkserver.
type Node struct {
	ID     string // stable, chosen by the chunkserver on first start
	Addr   string // host:port it serves QUIC on
	Weight uint64 // relative share of blocks; its capacity in bytes
	State  State
	Used   uint64 // bytes used on its disk
	Total  uint64 // bytes on its disk
}

// Map is the cluster map at one epoch.
type Map struct {
	Epoch uint64
	Nodes []Node
}

// Up returns the nodes in state Up.
func (m *Map) Up() []Node {
	var up []Node
	for _, n := range m.Nodes {
		if n.State == Up {
			up = append(up, n)
		}
	}
	return up
}
