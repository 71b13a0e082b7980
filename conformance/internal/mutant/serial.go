package mutant

import (
	"strconv"
	"sync/atomic"
)

var serial atomic.Uint64

func nextSerial() uint64 { return serial.Add(1) }

func itoa36(n uint64) string { return strconv.FormatUint(n, 36) }
