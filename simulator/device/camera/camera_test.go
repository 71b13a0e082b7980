package camera_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatehouse-iot/gatehouse/simulator/clock"
	"github.com/gatehouse-iot/gatehouse/simulator/device"
	"github.com/gatehouse-iot/gatehouse/simulator/device/camera"
	"github.com/gatehouse-iot/gatehouse/simulator/device/devicetest"
	"github.com/gatehouse-iot/gatehouse/simulator/fault"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newCamera(t *testing.T, cc camera.Config) (*device.Sim, *clock.Fake, *devicetest.Recorder) {
	clk := clock.NewFake(time.Date(2026, 3, 1, 7, 0, 0, 0, time.UTC))
	rec := &devicetest.Recorder{}
	d, err := camera.New(device.Config{ID: "cam-1", Seed: 11, Telemetry: -1}, cc, device.WithClock(clk), device.WithPublisher(rec))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	return d, clk, rec
}

func TestSnapshotPublishesBytesAndMatchingMetadata(t *testing.T) {
	d, _, rec := newCamera(t, camera.Config{SnapshotSize: 5000})
	a, err := d.Do(context.Background(), "snapshot", []byte(`{"corr":"s1"}`))
	if err != nil || a.Result != device.OK {
		t.Fatalf("snapshot ack %+v, %v", a, err)
	}
	raw := rec.On("/camera/cam-1/snapshot")
	if len(raw) != 1 || len(raw[0].Payload) != 5000 || raw[0].QoS != 1 || raw[0].Retain {
		t.Fatalf("raw snapshot messages %d (want one of 5000 bytes at QoS 1, not retained)", len(raw))
	}
	img := raw[0].Payload
	if img[0] != 0xFF || img[1] != 0xD8 || img[4998] != 0xFF || img[4999] != 0xD9 {
		t.Fatal("snapshot is not framed like a JPEG (SOI ... EOI)")
	}
	meta := rec.Last("/evt/snapshot")
	sum := sha256.Sum256(img)
	if meta["corr"] != "s1" || meta["bytes"] != float64(5000) || meta["sha256"] != hex.EncodeToString(sum[:]) {
		t.Fatalf("snapshot metadata %v does not describe the bytes", meta)
	}
}

func TestMotionStartsAndEndsAfterItsDuration(t *testing.T) {
	d, clk, rec := newCamera(t, camera.Config{MotionTime: 2 * time.Second})
	if err := d.Stimulate(device.Stimulus{Kind: device.StimMotion}); err != nil {
		t.Fatal(err)
	}
	if m := rec.Last("/evt/motion"); m["active"] != true {
		t.Fatalf("motion event %v", m)
	}
	if err := devicetest.Advance(clk, time.Second, d); err != nil {
		t.Fatal(err)
	}
	if err := d.Stimulate(device.Stimulus{Kind: device.StimMotion}); err != nil { // more motion extends it
		t.Fatal(err)
	}
	if err := devicetest.Advance(clk, 1500*time.Millisecond, d); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.On("/evt/motion")); n != 1 {
		t.Fatalf("%d motion events while motion continues, want 1", n)
	}
	if err := devicetest.Advance(clk, 500*time.Millisecond, d); err != nil {
		t.Fatal(err)
	}
	if m := rec.Last("/evt/motion"); m["active"] != false {
		t.Fatalf("motion end event %v", m)
	}
}

func TestPlatesComeFromTheListAndMisreadsAreSeeded(t *testing.T) {
	plates := []string{"AB-123-CD", "EF-456-GH"}
	d, _, rec := newCamera(t, camera.Config{Plates: plates})
	for range 10 {
		if err := d.Stimulate(device.Stimulus{Kind: device.StimPlate}); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range rec.On("/evt/plate") {
		p := devicetest.Decode(m.Payload)
		if p["plate"] != plates[0] && p["plate"] != plates[1] {
			t.Fatalf("plate %v is not from the configured list", p["plate"])
		}
	}
	read := func() []any {
		d, _, rec := newCamera(t, camera.Config{Plates: plates, MisreadRate: 0.5})
		var out []any
		for range 8 {
			_ = d.Stimulate(device.Stimulus{Kind: device.StimPlate})
			out = append(out, rec.Last("/evt/plate")["plate"])
		}
		return out
	}
	a, b := read(), read()
	misread := false
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed read %v then %v", a, b)
		}
		if a[i] != plates[0] && a[i] != plates[1] {
			misread = true
		}
	}
	if !misread {
		t.Fatalf("misread rate 0.5 produced no misread in %v", a)
	}
}

func TestCameraRejectsWhatDoesNotApply(t *testing.T) {
	d, _, _ := newCamera(t, camera.Config{})
	if a, _ := d.Do(context.Background(), "open", []byte(`{"corr":"o"}`)); a.Result != device.Rejected {
		t.Fatalf("open on a camera: %+v", a)
	}
	if err := d.Inject(fault.Fault{Kind: fault.Jam}); err == nil {
		t.Fatal("a camera accepted a mechanical jam")
	}
	if err := d.Stimulate(device.Stimulus{Kind: device.StimCard}); err == nil {
		t.Fatal("a camera accepted a card swipe")
	}
}
