package packet

// Connect is the first packet a client sends. In 3.1 and 3.1.1 CleanStart is the Clean Session
// flag. The username and password flags are kept apart from their values so that an empty
// username or password can be sent; the encoder sets a flag when its field is non-empty too.
type Connect struct {
	ProtocolName string  // "MQTT" or "MQIsdp"; the encoder uses the version's name when empty
	Version      Version // protocol level read from the packet; the encoder writes it when set, else v
	CleanStart   bool
	KeepAlive    uint16
	ClientID     string
	Will         *Will // nil when there is no will
	Username     string
	UsernameFlag bool
	Password     []byte
	PasswordFlag bool
	ReservedFlag bool // bit 0 of the connect flags, set only to build malformed CONNECTs
	Props        Properties
}

// Will is the message the server publishes when the client goes away without DISCONNECT.
type Will struct {
	Topic   string
	Payload []byte
	QoS     QoS
	Retain  bool
	Props   Properties // 5.0 will properties
}

// Connect flag bits (3.1.1 §3.1.2.3, 5.0 §3.1.2.3).
const (
	connReserved   = 0x01
	connClean      = 0x02
	connWill       = 0x04
	connWillQoS    = 0x18
	connWillRetain = 0x20
	connPassword   = 0x40
	connUsername   = 0x80
)

// Type returns TypeConnect.
func (*Connect) Type() Type { return TypeConnect }

func (p *Connect) name(v Version) string {
	if p.ProtocolName != "" {
		return p.ProtocolName
	}
	return v.ProtocolName()
}

func (p *Connect) hasUsername() bool { return p.UsernameFlag || p.Username != "" }
func (p *Connect) hasPassword() bool { return p.PasswordFlag || len(p.Password) > 0 }

// Flags returns the connect flags byte the encoder writes.
func (p *Connect) Flags() byte {
	var f byte
	if p.ReservedFlag {
		f |= connReserved
	}
	if p.CleanStart {
		f |= connClean
	}
	if p.Will != nil {
		f |= connWill | byte(p.Will.QoS&3)<<3
		if p.Will.Retain {
			f |= connWillRetain
		}
	}
	if p.hasPassword() {
		f |= connPassword
	}
	if p.hasUsername() {
		f |= connUsername
	}
	return f
}

func (p *Connect) remaining(v Version) int {
	n := 2 + len(p.name(v)) + 1 + 1 + 2 + 2 + len(p.ClientID)
	if v == V5 {
		n += p.Props.blockSize()
	}
	if w := p.Will; w != nil {
		if v == V5 {
			n += w.Props.blockSize()
		}
		n += 2 + len(w.Topic) + 2 + len(w.Payload)
	}
	if p.hasUsername() {
		n += 2 + len(p.Username)
	}
	if p.hasPassword() {
		n += 2 + len(p.Password)
	}
	return n
}

// Size returns the encoded length for version v.
func (p *Connect) Size(v Version) int {
	r := p.remaining(v)
	return headerSize(r) + r
}

// AppendTo appends the encoded CONNECT to dst. The field layout follows v; the protocol level
// byte is p.Version when set, so that a CONNECT for an unsupported level can be built.
func (p *Connect) AppendTo(dst []byte, v Version) ([]byte, error) {
	if err := p.checkLengths(v); err != nil {
		return dst, err
	}
	dst, err := appendHeader(dst, TypeConnect, 0, p.remaining(v), v)
	if err != nil {
		return dst, err
	}
	level := p.Version
	if level == 0 {
		level = v
	}
	dst = appendString(dst, p.name(v))
	dst = append(dst, byte(level), p.Flags())
	dst = appendU16(dst, p.KeepAlive)
	if v == V5 {
		dst = p.Props.appendBlock(dst)
	}
	dst = appendString(dst, p.ClientID)
	if w := p.Will; w != nil {
		if v == V5 {
			dst = w.Props.appendBlock(dst)
		}
		dst = appendString(dst, w.Topic)
		dst = appendBinary(dst, w.Payload)
	}
	if p.hasUsername() {
		dst = appendString(dst, p.Username)
	}
	if p.hasPassword() {
		dst = appendBinary(dst, p.Password)
	}
	return dst, nil
}

func (p *Connect) checkLengths(v Version) error {
	for _, f := range [...]struct {
		name string
		n    int
	}{{"protocol name", len(p.name(v))}, {"client identifier", len(p.ClientID)},
		{"user name", len(p.Username)}, {"password", len(p.Password)}} {
		if err := checkLen(TypeConnect, f.name, f.n); err != nil {
			return err
		}
	}
	if w := p.Will; w != nil {
		if err := checkLen(TypeConnect, "will topic", len(w.Topic)); err != nil {
			return err
		}
		if err := checkLen(TypeConnect, "will payload", len(w.Payload)); err != nil {
			return err
		}
		if v == V5 {
			if err := w.Props.check(TypeConnect); err != nil {
				return err
			}
		}
	}
	if v == V5 {
		return p.Props.check(TypeConnect)
	}
	return nil
}

// connectVersion maps a protocol name and level to the version they announce, or reports which
// of the two is wrong.
func connectVersion(name string, level byte) (Version, string) {
	switch {
	case name == "MQTT" && (level == byte(V311) || level == byte(V5)):
		return Version(level), ""
	case name == "MQIsdp" && level == byte(V31):
		return V31, ""
	case name != "MQTT" && name != "MQIsdp":
		return 0, "name"
	case level == byte(V31) || level == byte(V311) || level == byte(V5):
		return 0, "name"
	}
	return 0, "level"
}

// Unmarshal decodes a CONNECT body into p. The version comes from the packet's protocol level; v
// only chooses the numbering of the rules cited before the level is read. When the protocol name
// or level is not one this codec speaks, p holds both and the error's code is
// UnsupportedProtocolVersion, so that a server can answer with the right CONNACK.
func (p *Connect) Unmarshal(h FixedHeader, body []byte, v Version) error {
	*p = Connect{}
	d, err := begin(h, body, v, TypeConnect)
	if err != nil {
		return err
	}
	if p.ProtocolName, err = d.str("protocol name"); err != nil {
		return err
	}
	level, err := d.u8("protocol level")
	if err != nil {
		return err
	}
	p.Version = Version(level)
	cv, wrong := connectVersion(p.ProtocolName, level)
	if wrong == "name" {
		// A name this codec does not speak (or one that does not match the level) is refused with
		// "unsupported protocol version" ([MQTT-3.1.2-1]).
		return d.errAt(0, UnsupportedProtocolVersion, "MQTT-3.1.2-1", "protocol name",
			"protocol name "+quote(p.ProtocolName)+" with level "+itoa(int(level)))
	}
	if wrong == "level" {
		// [MQTT-3.1.2-2]: the server answers an unsupported level with CONNACK 0x01 / 0x84.
		return d.errAt(d.pos-1, UnsupportedProtocolVersion, "MQTT-3.1.2-2", "protocol level",
			"unsupported protocol level "+itoa(int(level)))
	}
	d.v = cv
	flagsAt := d.pos
	flags, err := d.u8("connect flags")
	if err != nil {
		return err
	}
	if err := connectFlagsError(flags, cv); err != nil {
		err.Offset = d.base + flagsAt
		return err
	}
	p.CleanStart = flags&connClean != 0
	p.UsernameFlag = flags&connUsername != 0
	p.PasswordFlag = flags&connPassword != 0
	if p.KeepAlive, err = d.u16("keep alive"); err != nil {
		return err
	}
	if cv == V5 {
		if err := d.props(&p.Props, propCtx(TypeConnect)); err != nil {
			return err
		}
	}
	if p.ClientID, err = d.str("client identifier"); err != nil {
		return err
	}
	if flags&connWill != 0 {
		w := &Will{QoS: QoS(flags & connWillQoS >> 3), Retain: flags&connWillRetain != 0}
		p.Will = w
		if cv == V5 {
			if err := d.props(&w.Props, ctxWill); err != nil {
				return err
			}
		}
		if w.Topic, err = d.str("will topic"); err != nil {
			return err
		}
		if w.Payload, err = d.bin("will payload"); err != nil {
			return err
		}
		if len(w.Payload) == 0 {
			w.Payload = nil
		}
	}
	if p.UsernameFlag {
		if p.Username, err = d.str("user name"); err != nil {
			return err
		}
	}
	if p.PasswordFlag {
		if p.Password, err = d.bin("password"); err != nil {
			return err
		}
		if len(p.Password) == 0 {
			p.Password = nil
		}
	}
	return d.end()
}

// connectFlagsError checks the bits of the connect flags that decide the payload's layout.
// The password-without-username rule of 3.1.1 does not change the layout and is left to Validate.
func connectFlagsError(f byte, v Version) *Error {
	e := func(rule, reason string) *Error {
		return &Error{Code: MalformedPacket, Rule: rule, Packet: TypeConnect, Field: "connect flags", Reason: reason}
	}
	if f&connReserved != 0 {
		// The reserved flag MUST be 0 [MQTT-3.1.2-3].
		return e("MQTT-3.1.2-3", "reserved flag set")
	}
	qos := f & connWillQoS >> 3
	if f&connWill == 0 {
		if qos != 0 {
			return e(pick(v, "MQTT-3.1.2-13", "MQTT-3.1.2-11"), "will QoS "+itoa(int(qos))+" without will flag")
		}
		if f&connWillRetain != 0 {
			return e(pick(v, "MQTT-3.1.2-15", "MQTT-3.1.2-13"), "will retain without will flag")
		}
	} else if qos == 3 {
		return e(pick(v, "MQTT-3.1.2-14", "MQTT-3.1.2-12"), "will QoS 3")
	}
	return nil
}

// pick returns the 3.1/3.1.1 statement ID or the 5.0 one, for rules whose numbers differ.
func pick(v Version, v3, v5 string) string {
	if v == V5 {
		return v5
	}
	return v3
}

// quote wraps s in double quotes for messages, without fmt.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return "\"" + s + "\""
}
