// Package images builds Gatehouse's container images on the local Docker daemon without any
// registry: nothing is pulled, every image is FROM scratch.
//
//	gatehouse:dev            the gatehouse binary, compiled here with CGO_ENABLED=0
//	gatehouse-mosquitto:dev  Debian's installed mosquitto with the libraries ldd lists for it
//
// Build assembles the build context in a temporary directory (ci/docker holds the Dockerfiles and
// mosquitto.conf) and runs `docker build --pull=false`. The image is labelled with a digest of its
// context, so that Ensure rebuilds only when the context changed: `make images` and the container
// tests go through the same code path, and tests never run against an image built from older
// code.
package images

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Default tags, the ones `make images` builds and the container tests use.
const (
	GatehouseTag = "gatehouse:dev"
	MosquittoTag = "gatehouse-mosquitto:dev"
)

// DigestLabel is the image label holding the digest of the build context.
const DigestLabel = "io.gatehouse.context-digest"

// DockerInstall and MosquittoInstall are the commands that install what Build needs.
const (
	DockerInstall    = "apt-get install -y docker.io && service docker start"
	MosquittoInstall = "apt-get install -y mosquitto"
)

// Image is one image Gatehouse builds.
type Image struct {
	// Name says what the image is, for messages: "gatehouse", "gatehouse-mosquitto".
	Name string
	// Tag is the default tag.
	Tag string
	// Dockerfile is the Dockerfile's path relative to the module root.
	Dockerfile string
	// assemble fills the build context dir (the Dockerfile is copied by Build).
	assemble func(ctx context.Context, o *Options, dir string) error
}

// Gatehouse is the gatehouse image: the static gatehouse binary, FROM scratch, user 65532.
var Gatehouse = Image{Name: "gatehouse", Tag: GatehouseTag, Dockerfile: "ci/docker/gatehouse.Dockerfile", assemble: assembleGatehouse}

// Mosquitto is Debian's mosquitto, copied from this machine with its shared libraries.
var Mosquitto = Image{Name: "gatehouse-mosquitto", Tag: MosquittoTag, Dockerfile: "ci/docker/mosquitto.Dockerfile", assemble: assembleMosquitto}

// All lists the images `make images` builds.
func All() []Image { return []Image{Gatehouse, Mosquitto} }

// ByName finds an image by its Name.
func ByName(name string) (Image, error) {
	for _, img := range All() {
		if img.Name == name {
			return img, nil
		}
	}
	names := make([]string, 0, len(All()))
	for _, img := range All() {
		names = append(names, img.Name)
	}
	return Image{}, fmt.Errorf("images: unknown image %q (known: %s)", name, strings.Join(names, ", "))
}

// Options say where the tools and sources are. The zero value finds everything itself.
type Options struct {
	// Root is the module root holding ci/docker and cmd/gatehouse; empty asks `go env GOMOD`.
	Root string
	// Docker is the docker CLI; empty looks for "docker" on PATH.
	Docker string
	// Go is the go command; empty looks for "go" on PATH.
	Go string
	// Mosquitto is the mosquitto binary to copy; empty looks on PATH and in /usr/sbin.
	Mosquitto string
	// Version and Commit are stamped into the gatehouse binary; empty asks git, as the Makefile does.
	Version, Commit string
	// Log receives the build tools' output; nil discards it.
	Log io.Writer
	// Force builds even when an image with the same context digest is present.
	Force bool
}

// Result says what Build or Ensure did.
type Result struct {
	Tag    string
	Digest string // sha256 of the build context
	Built  bool   // false when the image was already up to date
	Took   time.Duration
}

func (r Result) String() string {
	if !r.Built {
		return fmt.Sprintf("%s up to date (%s)", r.Tag, short(r.Digest))
	}
	return fmt.Sprintf("%s built in %s (%s)", r.Tag, r.Took.Round(100*time.Millisecond), short(r.Digest))
}

func short(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

// Ensure makes sure the image is present with the current context: it assembles the context and
// builds only when no image with that tag carries the same digest (or o.Force is set). Concurrent
// callers on one machine (parallel test packages) take turns through a lock file.
func Ensure(ctx context.Context, img Image, tag string, o Options) (Result, error) {
	if tag == "" {
		tag = img.Tag
	}
	start := time.Now()
	if err := o.resolve(ctx); err != nil {
		return Result{Tag: tag}, fmt.Errorf("image %s: %w", tag, err)
	}
	unlock, err := lock(ctx, filepath.Join(os.TempDir(), "gatehouse-images.lock"))
	if err != nil {
		return Result{Tag: tag}, fmt.Errorf("image %s: %w", tag, err)
	}
	defer unlock()
	dir, err := os.MkdirTemp("", "gatehouse-image-")
	if err != nil {
		return Result{Tag: tag}, fmt.Errorf("image %s: %w", tag, err)
	}
	defer os.RemoveAll(dir)
	digest, err := assemble(ctx, img, &o, dir)
	if err != nil {
		return Result{Tag: tag}, fmt.Errorf("image %s: %w", tag, err)
	}
	res := Result{Tag: tag, Digest: digest}
	if !o.Force {
		if have, _ := o.labelOf(ctx, tag, DigestLabel); have == digest {
			res.Took = time.Since(start)
			return res, nil
		}
	}
	previous := o.imageID(ctx, tag)
	if err := o.dockerBuild(ctx, img, tag, digest, dir); err != nil {
		return res, fmt.Errorf("image %s: %w", tag, err)
	}
	// The image the tag named before is left dangling by the build; remove it unless a
	// container still uses it (the daemon refuses then, and it stays).
	if previous != "" && previous != o.imageID(ctx, tag) {
		_ = exec.CommandContext(ctx, o.Docker, "image", "rm", previous).Run()
	}
	res.Built = true
	res.Took = time.Since(start)
	return res, nil
}

// Build builds the image whatever is present.
func Build(ctx context.Context, img Image, tag string, o Options) (Result, error) {
	o.Force = true
	return Ensure(ctx, img, tag, o)
}

// Remove deletes an image tag from the local daemon (tests remove the variants they build).
func Remove(ctx context.Context, tag string, o Options) error {
	if err := o.resolve(ctx); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, o.Docker, "image", "rm", "-f", tag).CombinedOutput(); err != nil {
		return fmt.Errorf("docker image rm %s: %w: %s", tag, err, bytes.TrimSpace(out))
	}
	return nil
}

// Derive builds tag FROM base (an image built before, never pulled) with the given Dockerfile
// lines after the FROM line: a variant with another default command, say.
func Derive(ctx context.Context, base, tag string, lines []string, o Options) error {
	if err := o.resolve(ctx); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "gatehouse-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	df := "FROM " + base + "\n" + strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, o.Docker, "build", "--pull=false", "-t", tag, dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("docker build %s FROM %s: %w: %s", tag, base, err, lastLines(out.String(), 20))
	}
	return nil
}

// resolve fills in the tools and the module root.
func (o *Options) resolve(ctx context.Context) error {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Docker == "" {
		p, err := exec.LookPath("docker")
		if err != nil {
			return fmt.Errorf("the docker CLI is not on PATH; install it with: %s", DockerInstall)
		}
		o.Docker = p
	}
	if o.Go == "" {
		p, err := exec.LookPath("go")
		if err != nil {
			return errors.New("the go command is not on PATH; install Go 1.26 from https://go.dev/dl/")
		}
		o.Go = p
	}
	if o.Root == "" {
		out, err := exec.CommandContext(ctx, o.Go, "env", "GOMOD").Output()
		mod := strings.TrimSpace(string(out))
		if err != nil || mod == "" || mod == os.DevNull {
			return fmt.Errorf("not inside the gatehouse module (go env GOMOD: %q, %v); run from the source tree or set Options.Root", mod, err)
		}
		o.Root = filepath.Dir(mod)
	}
	return nil
}

// assemble builds the context in dir and returns its digest.
func assemble(ctx context.Context, img Image, o *Options, dir string) (string, error) {
	df, err := os.ReadFile(filepath.Join(o.Root, img.Dockerfile))
	if err != nil {
		return "", fmt.Errorf("read the Dockerfile: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), df, 0o644); err != nil {
		return "", err
	}
	if err := img.assemble(ctx, o, dir); err != nil {
		return "", err
	}
	return digestDir(dir)
}

// digestDir hashes every path, mode and content under dir, in a fixed order.
func digestDir(dir string) (string, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("digest the build context: %w", err)
	}
	sort.Strings(paths)
	h := sha256.New()
	for _, p := range paths {
		st, err := os.Lstat(p)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s\x00%o\x00", filepath.ToSlash(rel), st.Mode())
		if st.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return "", err
			}
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return "", err
			}
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// labelOf reads one label of a local image; an error when the image is absent.
func (o *Options) labelOf(ctx context.Context, tag, label string) (string, error) {
	out, err := exec.CommandContext(ctx, o.Docker, "image", "inspect", "--format",
		fmt.Sprintf("{{ index .Config.Labels %q }}", label), tag).Output()
	if err != nil {
		return "", fmt.Errorf("docker image inspect %s: %w", tag, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// imageID is the ID of a local image, "" when there is none.
func (o *Options) imageID(ctx context.Context, tag string) string {
	out, err := exec.CommandContext(ctx, o.Docker, "image", "inspect", "--format", "{{.Id}}", tag).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// Present reports whether a tag exists in the local daemon.
func Present(ctx context.Context, tag string, o Options) bool {
	if err := o.resolve(ctx); err != nil {
		return false
	}
	return exec.CommandContext(ctx, o.Docker, "image", "inspect", "--format", "{{.Id}}", tag).Run() == nil
}

func (o *Options) dockerBuild(ctx context.Context, img Image, tag, digest, dir string) error {
	args := []string{"build", "--pull=false", "-t", tag,
		"--label", DigestLabel + "=" + digest,
		"--label", "org.opencontainers.image.title=" + img.Name,
	}
	if o.Version != "" {
		args = append(args, "--label", "org.opencontainers.image.version="+o.Version)
	}
	args = append(args, dir)
	cmd := exec.CommandContext(ctx, o.Docker, args...)
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, o.Log)
	cmd.Stderr = cmd.Stdout
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("docker build --pull=false -t %s: %w\n%s", tag, err, lastLines(out.String(), 30))
	}
	return nil
}

// dockerArch is the architecture of the daemon's machine, which the binaries must match.
func (o *Options) dockerArch(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, o.Docker, "version", "--format", "{{.Server.Arch}}").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("the Docker daemon does not answer (%s); start it with: %s", strings.TrimSpace(string(out)), DockerInstall)
	}
	return strings.TrimSpace(string(out)), nil
}

func assembleGatehouse(ctx context.Context, o *Options, dir string) error {
	arch, err := o.dockerArch(ctx)
	if err != nil {
		return err
	}
	if o.Version == "" {
		o.Version = gitOut(ctx, o.Root, "dev", "describe", "--tags", "--always", "--dirty")
	}
	if o.Commit == "" {
		o.Commit = gitOut(ctx, o.Root, "unknown", "rev-parse", "HEAD")
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, o.Go, "build", "-trimpath",
		"-ldflags", "-s -w -X main.version="+o.Version+" -X main.commit="+o.Commit,
		"-o", filepath.Join(dir, "gatehouse"), "./cmd/gatehouse")
	cmd.Dir = o.Root
	// A static binary for the daemon's architecture: the image has no C library.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, o.Log)
	cmd.Stderr = cmd.Stdout
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/gatehouse (CGO_ENABLED=0 GOARCH=%s): %w\n%s", arch, err, lastLines(out.String(), 30))
	}
	return nil
}

func gitOut(ctx context.Context, dir, fallback string, args ...string) string {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if s := strings.TrimSpace(string(out)); err == nil && s != "" {
		return s
	}
	return fallback
}

// passwd and group name the non-root user the images run as.
const (
	passwd = "root:x:0:0:root:/root:/usr/sbin/nologin\nmosquitto:x:65532:65532:mosquitto:/nonexistent:/usr/sbin/nologin\n"
	group  = "root:x:0:\nmosquitto:x:65532:\n"
)

func assembleMosquitto(ctx context.Context, o *Options, dir string) error {
	bin := o.Mosquitto
	if bin == "" {
		var err error
		if bin, err = lookMosquitto(); err != nil {
			return err
		}
	}
	if runtime.GOOS != "linux" {
		return fmt.Errorf("the mosquitto image copies this machine's Linux mosquitto; build it on Linux")
	}
	rootfs := filepath.Join(dir, "rootfs")
	files, err := sharedLibraries(ctx, bin)
	if err != nil {
		return err
	}
	copies := map[string]string{"usr/sbin/mosquitto": bin}
	for _, lib := range files {
		copies[strings.TrimPrefix(lib, "/")] = lib
	}
	for dst, src := range copies {
		if err := copyFile(src, filepath.Join(rootfs, dst), 0o755); err != nil {
			return err
		}
	}
	conf, err := os.ReadFile(filepath.Join(o.Root, "ci/docker/mosquitto.conf"))
	if err != nil {
		return fmt.Errorf("read mosquitto.conf: %w", err)
	}
	for path, content := range map[string]string{
		"etc/passwd":                      passwd,
		"etc/group":                       group,
		"mosquitto/config/mosquitto.conf": string(conf),
	} {
		p := filepath.Join(rootfs, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return os.Mkdir(filepath.Join(dir, "data"), 0o755)
}

func lookMosquitto() (string, error) {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("mosquitto is not installed (looked on PATH and in /usr/sbin); install it with: %s", MosquittoInstall)
}

// sharedLibraries lists the absolute paths of the libraries and the loader that ldd names for
// bin, as the dynamic loader will look them up inside the image.
func sharedLibraries(ctx context.Context, bin string) ([]string, error) {
	ldd, err := exec.LookPath("ldd")
	if err != nil {
		return nil, errors.New("ldd is not on PATH; install it with: apt-get install -y libc-bin")
	}
	out, err := exec.CommandContext(ctx, ldd, bin).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w: %s", bin, err, bytes.TrimSpace(out))
	}
	return parseLdd(string(out), bin)
}

// parseLdd reads ldd's output:
//
//	linux-vdso.so.1 (0x...)                      the kernel's, not a file
//	libssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x...)
//	/lib64/ld-linux-x86-64.so.2 (0x...)          the loader
//	libfoo.so.1 => not found                     an error: the binary would not start
func parseLdd(out, bin string) ([]string, error) {
	var libs []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.Contains(line, "statically linked") {
			continue
		}
		if name, path, ok := strings.Cut(line, "=>"); ok {
			path = strings.TrimSpace(path)
			if strings.HasPrefix(path, "not found") {
				return nil, fmt.Errorf("ldd %s: line %d: %s is not found on this machine", bin, n, strings.TrimSpace(name))
			}
			if f := strings.Fields(path); len(f) > 0 && strings.HasPrefix(f[0], "/") {
				libs = append(libs, f[0])
			}
			continue
		}
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "/") {
			libs = append(libs, f[0])
		}
	}
	if len(libs) == 0 {
		return nil, fmt.Errorf("ldd %s: no shared library listed (%q)", bin, lastLines(out, 5))
	}
	return libs, nil
}

// copyFile copies src (following symbolic links) to dst as a regular file.
func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
