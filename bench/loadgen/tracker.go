package loadgen

// Tracker records which messages one receiver got, per publisher, to count what was lost,
// duplicated or reordered. It is owned by one goroutine (the receiver's read loop).
type Tracker struct {
	pubs []pubTrack
	// Distinct counts messages received at least once; Duplicates counts the extra copies.
	Distinct, Duplicates uint64
	// OutOfOrder counts messages whose sequence number is lower than one already received from
	// the same publisher (MQTT keeps per-publisher order for one QoS: MQTT-4.6.0-5/-6).
	OutOfOrder uint64
	// Unknown counts messages from a publisher id outside the run.
	Unknown uint64
}

type pubTrack struct {
	seen []uint64 // bit per sequence number
	max  uint64   // highest sequence number received + 1; 0 = none yet
}

// NewTracker returns a tracker for publishers 0..publishers-1.
func NewTracker(publishers int) *Tracker {
	return &Tracker{pubs: make([]pubTrack, publishers)}
}

// Record notes one received message and reports whether it was new.
func (t *Tracker) Record(s Stamp) bool {
	if int64(s.Publisher) >= int64(len(t.pubs)) {
		t.Unknown++
		return false
	}
	p := &t.pubs[s.Publisher]
	w := s.Seq / 64
	for uint64(len(p.seen)) <= w {
		p.seen = append(p.seen, 0)
	}
	bit := uint64(1) << (s.Seq % 64)
	if p.seen[w]&bit != 0 {
		t.Duplicates++
		return false
	}
	p.seen[w] |= bit
	t.Distinct++
	if s.Seq+1 < p.max {
		t.OutOfOrder++
	} else {
		p.max = s.Seq + 1
	}
	return true
}

// Missing returns how many of the first sent[i] messages of each publisher i (sequence numbers
// 0..sent[i]-1) were never received.
func (t *Tracker) Missing(sent []uint64) uint64 {
	var missing uint64
	for i, n := range sent {
		if i >= len(t.pubs) {
			missing += n
			continue
		}
		p := &t.pubs[i]
		for seq := uint64(0); seq < n; seq++ {
			w := seq / 64
			if w >= uint64(len(p.seen)) || p.seen[w]&(1<<(seq%64)) == 0 {
				missing++
			}
		}
	}
	return missing
}

// Merge adds the counters of o (another receiver's tracker) to t's counters; the sets of
// received messages stay separate.
func (t *Tracker) Merge(o *Tracker) {
	t.Distinct += o.Distinct
	t.Duplicates += o.Duplicates
	t.OutOfOrder += o.OutOfOrder
	t.Unknown += o.Unknown
}
