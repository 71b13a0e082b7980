package packet

// headerSize returns the size of a fixed header for a packet whose remaining length is r.
func headerSize(r int) int { return 1 + VarintSize(r) }

// appendHeader appends a fixed header after checking that the remaining length can be expressed.
func appendHeader(dst []byte, t Type, flags byte, remaining int, v Version) ([]byte, error) {
	if remaining > MaxRemaining {
		return dst, &Error{Code: PacketTooLarge, Rule: remainingRule(v), Packet: t, Field: "remaining length",
			Offset: -1, Reason: "remaining length " + itoa(remaining) + " exceeds 268435455"}
	}
	return AppendVarint(append(dst, byte(t)<<4|flags&0x0F), remaining), nil
}

// checkLen refuses a string or binary field that a two-byte length cannot describe.
func checkLen(t Type, field string, n int) error {
	if n > 65535 {
		return tooLong(t, field, n)
	}
	return nil
}
