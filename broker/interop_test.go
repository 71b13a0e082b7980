package broker_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
	"github.com/gatehouse-iot/gatehouse/internal/testenv"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// TestMosquittoClients exchanges a retained QoS 1 message and a QoS 2 message through the broker
// with Debian's mosquitto_pub and mosquitto_sub, in MQTT 3.1.1 and 5.0.
func TestMosquittoClients(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, ginkgoInterrupts) })
	pub, sub := testenv.MosquittoPub(t), testenv.MosquittoSub(t)
	b := brokertest.Start(t)
	host, port, _ := strings.Cut(b.Addr(), ":")
	for _, v := range []string{"mqttv311", "mqttv5"} {
		t.Run(v, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			topic := "acs/interop/" + v
			if out, err := exec.CommandContext(ctx, pub, "-h", host, "-p", port, "-V", v, "-q", "1", "-r", "-t", topic+"/status", "-m", `{"online":true}`).CombinedOutput(); err != nil {
				t.Fatalf("mosquitto_pub: %v: %s", err, out)
			}
			// -C 2: the retained status, then the QoS 2 charge published after the subscription exists.
			cmd := exec.CommandContext(ctx, sub, "-h", host, "-p", port, "-V", v, "-q", "2", "-t", topic+"/#", "-C", "2", "-v", "-i", "sub-"+v)
			var out strings.Builder
			cmd.Stdout = &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			b.Trace().WaitFor(t, 10*time.Second, brokertest.All(brokertest.Out(packet.TypeSuback), brokertest.Client("sub-"+v)))
			if o, err := exec.CommandContext(ctx, pub, "-h", host, "-p", port, "-V", v, "-q", "2", "-t", topic+"/evt/charge", "-m", "2.50").CombinedOutput(); err != nil {
				t.Fatalf("mosquitto_pub QoS 2: %v: %s", err, o)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("mosquitto_sub: %v (got %q)", err, out.String())
			}
			want := topic + "/status {\"online\":true}\n" + topic + "/evt/charge 2.50\n"
			if out.String() != want {
				t.Errorf("mosquitto_sub printed %q, want %q", out.String(), want)
			}
		})
	}
}
