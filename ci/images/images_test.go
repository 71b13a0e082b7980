package images

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/internal/testenv"
)

func TestParseLdd(t *testing.T) {
	tests := []struct {
		name, out string
		want      []string
		err       string
	}{
		{
			name: "debian mosquitto",
			out: "\tlinux-vdso.so.1 (0x00007ffd5a1f2000)\n" +
				"\tlibwrap.so.0 => /lib/x86_64-linux-gnu/libwrap.so.0 (0x00007f3d24b02000)\n" +
				"\tlibssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x00007f3d24960000)\n" +
				"\t/lib64/ld-linux-x86-64.so.2 (0x00007f3d24bc9000)\n",
			want: []string{"/lib/x86_64-linux-gnu/libwrap.so.0", "/lib/x86_64-linux-gnu/libssl.so.3", "/lib64/ld-linux-x86-64.so.2"},
		},
		{
			name: "arm64 loader",
			out:  "\tlinux-vdso.so.1 (0x0000ffff8a5e1000)\n\tlibc.so.6 => /lib/aarch64-linux-gnu/libc.so.6 (0x0000ffff8a3f0000)\n\t/lib/ld-linux-aarch64.so.1 (0x0000ffff8a5a4000)\n",
			want: []string{"/lib/aarch64-linux-gnu/libc.so.6", "/lib/ld-linux-aarch64.so.1"},
		},
		{
			name: "missing library",
			out:  "\tlibwrap.so.0 => not found\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x1)\n",
			err:  "line 1: libwrap.so.0 is not found",
		},
		{
			name: "static binary",
			out:  "\tnot a dynamic executable\n",
			err:  "no shared library listed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseLdd(tt.out, "/usr/sbin/mosquitto")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestDigestDir(t *testing.T) {
	write := func(dir, name, content string, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	build := func(change func(dir string)) string {
		t.Helper()
		dir := t.TempDir()
		write(dir, "Dockerfile", "FROM scratch\n", 0o644)
		write(dir, "rootfs/usr/sbin/mosquitto", "binary", 0o755)
		if change != nil {
			change(dir)
		}
		d, err := digestDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	base := build(nil)
	if !strings.HasPrefix(base, "sha256:") || len(base) != len("sha256:")+64 {
		t.Fatalf("digest %q", base)
	}
	if again := build(nil); again != base {
		t.Fatalf("the same context gave two digests: %s and %s (times or temporary names must not count)", base, again)
	}
	for name, change := range map[string]func(string){
		"content": func(dir string) { write(dir, "rootfs/usr/sbin/mosquitto", "binarY", 0o755) },
		"mode":    func(dir string) { write(dir, "rootfs/usr/sbin/mosquitto", "binary", 0o644) },
		"name":    func(dir string) { write(dir, "rootfs/etc/passwd", "", 0o644) },
		"empty dir": func(dir string) {
			if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
				t.Fatal(err)
			}
		},
	} {
		if d := build(change); d == base {
			t.Errorf("changing the %s of a file left the digest as it was", name)
		}
	}
}

func TestByName(t *testing.T) {
	for _, img := range All() {
		got, err := ByName(img.Name)
		if err != nil || got.Tag != img.Tag {
			t.Fatalf("ByName(%q) = %v, %v", img.Name, got.Tag, err)
		}
	}
	if _, err := ByName("nginx"); err == nil || !strings.Contains(err.Error(), "gatehouse-mosquitto") {
		t.Fatalf("err = %v, want the known names", err)
	}
}

// TestEnsureBuildsOnce: a second Ensure with nothing changed builds nothing, and Force builds.
func TestEnsureBuildsOnce(t *testing.T) {
	testenv.Docker(t)
	testenv.Mosquitto(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const tag = "gatehouse-mosquitto:imagestest"
	t.Cleanup(func() { _ = Remove(context.Background(), tag, Options{}) })
	// A version label of its own keeps this image apart from gatehouse-mosquitto:dev, which has
	// the same layers: an image with two tags is never removed from under the other one.
	first, err := Ensure(ctx, Mosquitto, tag, Options{Version: "imagestest-1"})
	if err != nil {
		t.Fatal(err)
	}
	if !first.Built {
		t.Fatalf("%s: the first Ensure of a new tag built nothing", first)
	}
	second, err := Ensure(ctx, Mosquitto, tag, Options{Version: "imagestest-1"})
	if err != nil {
		t.Fatal(err)
	}
	if second.Built || second.Digest != first.Digest {
		t.Fatalf("second Ensure: %s, first: %s; want the image left as it was", second, first)
	}
	o := Options{}
	if err := o.resolve(ctx); err != nil {
		t.Fatal(err)
	}
	before := o.imageID(ctx, tag)
	// Forced, with another label: a new image, and the one it replaces is not left behind.
	forced, err := Build(ctx, Mosquitto, tag, Options{Version: "imagestest-2"})
	if err != nil {
		t.Fatal(err)
	}
	if !forced.Built {
		t.Fatalf("Build: %s, want a build", forced)
	}
	if after := o.imageID(ctx, tag); after == before {
		t.Fatalf("the label of the new build did not make a new image")
	} else if o.imageID(ctx, before) != "" {
		t.Fatalf("the image %s that %s named before the build is still there", before, tag)
	}
	if !Present(ctx, tag, Options{}) {
		t.Fatalf("%s is not present after the build", tag)
	}
}
