// Package camera simulates an entrance camera: motion detection, licence plate recognition from
// a seeded list of plates, and snapshots on command. A snapshot's bytes go on
// {prefix}/camera/{id}/snapshot (QoS 1, not retained) and its metadata, with the SHA-256 of the
// bytes, on evt/snapshot.
package camera

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/gatehouse-iot/gatehouse/simulator/device"
	"github.com/gatehouse-iot/gatehouse/simulator/fault"
)

// Config is a camera's own configuration.
type Config struct {
	// Plates are the plates a passing vehicle shows (seeded pick); default a generated list.
	Plates []string `yaml:"plates,omitempty" json:"plates,omitempty"`
	// MotionTime is how long motion lasts when a stimulus does not say, default 2s.
	MotionTime time.Duration `yaml:"motion_time,omitempty" json:"motion_time,omitempty"`
	// SnapshotSize is the size of a snapshot's bytes, default 32 KiB.
	SnapshotSize int `yaml:"snapshot_size,omitempty" json:"snapshot_size,omitempty"`
	// MisreadRate is the probability that a plate is read with one wrong character, 0..1.
	MisreadRate float64 `yaml:"misread_rate,omitempty" json:"misread_rate,omitempty"`
}

// Machine is the camera state machine.
type Machine struct {
	cfg        Config
	motion     bool
	stopMotion func()
	snapshots  uint64
	plates     uint64
}

var _ device.Machine = (*Machine)(nil)

// NewMachine returns a camera state machine.
func NewMachine(cfg Config) *Machine {
	if cfg.MotionTime == 0 {
		cfg.MotionTime = 2 * time.Second
	}
	if cfg.SnapshotSize == 0 {
		cfg.SnapshotSize = 32 << 10
	}
	return &Machine{cfg: cfg}
}

// New builds a camera device.
func New(cfg device.Config, cc Config, opts ...device.Option) (*device.Sim, error) {
	if cc.SnapshotSize < 0 || cc.SnapshotSize > 16<<20 {
		return nil, fmt.Errorf("device %s: camera snapshot_size %d is outside 0..16MiB", cfg.ID, cc.SnapshotSize)
	}
	if cc.MisreadRate < 0 || cc.MisreadRate > 1 {
		return nil, fmt.Errorf("device %s: camera misread_rate %v is outside 0..1", cfg.ID, cc.MisreadRate)
	}
	return device.New(cfg, NewMachine(cc), opts...)
}

// Kind returns "camera".
func (m *Machine) Kind() string { return device.KindCamera }

// Model returns the default model name.
func (m *Machine) Model() string { return "GH-ANPR-4K" }

// Boot starts idle.
func (m *Machine) Boot(env device.Env) {
	m.motion, m.stopMotion, m.snapshots, m.plates = false, nil, 0, 0
	if len(m.cfg.Plates) == 0 {
		const letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
		for range 12 {
			r := env.Rand()
			m.cfg.Plates = append(m.cfg.Plates, fmt.Sprintf("%c%c-%d-%c%c", letters[r.IntN(len(letters))],
				letters[r.IntN(len(letters))], 100+r.IntN(900), letters[r.IntN(len(letters))], letters[r.IntN(len(letters))]))
		}
	}
}

// PowerOff forgets the state.
func (m *Machine) PowerOff(device.Env) { m.stopMotion = nil }

// State is the retained state.
func (m *Machine) State() map[string]any {
	return map[string]any{"mode": "normal", "motion": m.motion, "snapshots": m.snapshots, "plates": m.plates}
}

// Command handles snapshot.
func (m *Machine) Command(env device.Env, cmd device.Command) {
	switch cmd.Name {
	case "snapshot":
		m.snapshot(env, cmd)
	case "open", "close", "hold_open", "release", "allow_pass", "lock", "unlock", "free":
		env.Ack(cmd, device.Rejected, "command "+cmd.Name+" does not apply to a camera (it takes snapshot, reboot)")
	default:
		env.Ack(cmd, device.Rejected, "unknown command "+cmd.Name+" (a camera takes snapshot, reboot)")
	}
}

// snapshot publishes seeded bytes framed like a JPEG (SOI ... EOI), then their metadata.
func (m *Machine) snapshot(env device.Env, cmd device.Command) {
	n := m.cfg.SnapshotSize
	img := make([]byte, n)
	r := env.Rand()
	for i := range img {
		img[i] = byte(r.Uint32())
	}
	if n >= 4 {
		img[0], img[1] = 0xFF, 0xD8
		img[n-2], img[n-1] = 0xFF, 0xD9
	}
	sum := sha256.Sum256(img)
	m.snapshots++
	env.Publish("snapshot", 1, false, img)
	env.Event("snapshot", 1, cmd.Corr, map[string]any{
		"bytes": n, "sha256": hex.EncodeToString(sum[:]), "content_type": "image/jpeg", "topic": "snapshot",
	})
	env.Ack(cmd, device.OK, "")
	env.StateChanged()
}

// Stimulate handles motion and plates.
func (m *Machine) Stimulate(env device.Env, s device.Stimulus) error {
	switch s.Kind {
	case device.StimMotion:
		d := s.Duration
		if d <= 0 {
			d = m.cfg.MotionTime
		}
		if m.stopMotion != nil {
			m.stopMotion()
		} else {
			m.motion = true
			env.Event("motion", 1, "", map[string]any{"active": true})
			env.StateChanged()
		}
		m.stopMotion = env.After(d, func() {
			m.stopMotion = nil
			m.motion = false
			env.Event("motion", 1, "", map[string]any{"active": false})
			env.StateChanged()
		})
		return nil
	case device.StimPlate:
		r := env.Rand()
		plate := s.Plate
		if plate == "" {
			plate = m.cfg.Plates[r.IntN(len(m.cfg.Plates))]
		}
		read, conf := plate, 0.85+0.14*r.Float64()
		if m.cfg.MisreadRate > 0 && r.Float64() < m.cfg.MisreadRate && len(plate) > 0 {
			b := []byte(plate)
			i := r.IntN(len(b))
			b[i] = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"[r.IntN(33)]
			read, conf = string(b), 0.5+0.3*r.Float64()
		}
		m.plates++
		env.Event("plate", 1, "", map[string]any{"plate": read, "confidence": float64(int(conf*1000)) / 1000})
		env.StateChanged()
		return nil
	}
	return fmt.Errorf("stimulus %q does not apply to a camera (want motion, plate)", s.Kind)
}

// Inject: a camera has no relays or moving parts to jam.
func (m *Machine) Inject(device.Env, fault.Fault) (bool, error) { return false, nil }

// Clear has nothing to clear.
func (m *Machine) Clear(device.Env, string) {}
