package containertest_test

import (
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/goccy/go-yaml"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// template is a CI template as the suite reads it: the shell lines it runs, its variables, and
// the paths it publishes.
type template struct {
	file      string
	lines     []string          // shell lines, in order
	vars      map[string]string // env (GitHub) or variables (GitLab)
	artifacts []string          // paths published as artifacts (directories end in /)
	junit     []string          // JUnit files handed to the CI's test report
}

func readYAML(path string) map[string]any {
	GinkgoHelper()
	b, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	var doc map[string]any
	Expect(yaml.Unmarshal(b, &doc)).To(Succeed(), "%s is not valid YAML", path)
	return doc
}

func strs(v any) []string {
	var out []string
	switch v := v.(type) {
	case string:
		for _, l := range strings.Split(v, "\n") {
			if strings.TrimSpace(l) != "" {
				out = append(out, l)
			}
		}
	case []any:
		for _, x := range v {
			out = append(out, strs(x)...)
		}
	}
	return out
}

func stringMap(v any) map[string]string {
	out := map[string]string{}
	m, _ := v.(map[string]any)
	for k, x := range m {
		if s, ok := x.(string); ok {
			out[k] = s
		}
	}
	return out
}

func githubTemplate() template {
	GinkgoHelper()
	t := template{file: "../github/gatehouse.yml"}
	doc := readYAML(t.file)
	t.vars = stringMap(doc["env"])
	jobs, _ := doc["jobs"].(map[string]any)
	job, _ := jobs["gatehouse"].(map[string]any)
	steps, _ := job["steps"].([]any)
	Expect(steps).NotTo(BeEmpty(), "%s: no steps in job gatehouse", t.file)
	for _, s := range steps {
		step, _ := s.(map[string]any)
		t.lines = append(t.lines, strs(step["run"])...)
		if uses, _ := step["uses"].(string); strings.HasPrefix(uses, "actions/upload-artifact@") {
			with, _ := step["with"].(map[string]any)
			t.artifacts = append(t.artifacts, strs(with["path"])...)
			Expect(step["if"]).To(Equal("always()"), "%s: the reports must be published when the checks fail too", t.file)
		}
	}
	return t
}

func gitlabTemplate() template {
	GinkgoHelper()
	t := template{file: "../gitlab/gatehouse.gitlab-ci.yml"}
	doc := readYAML(t.file)
	job, _ := doc["gatehouse"].(map[string]any)
	Expect(job).NotTo(BeNil(), "%s: no job gatehouse", t.file)
	t.vars = stringMap(job["variables"])
	t.lines = append(strs(job["before_script"]), strs(job["script"])...)
	arts, _ := job["artifacts"].(map[string]any)
	Expect(arts["when"]).To(Equal("always"), "%s: the reports must be kept when the checks fail too", t.file)
	t.artifacts = strs(arts["paths"])
	reports, _ := arts["reports"].(map[string]any)
	t.junit = strs(reports["junit"])
	return t
}

var varRef = regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)

// gatehouseCommands returns the template's gatehouse command lines as argument lists, with its
// variables expanded (overrides first) and shell control (|| status=1) dropped.
func (t template) gatehouseCommands(overrides map[string]string) [][]string {
	GinkgoHelper()
	var out [][]string
	for _, line := range t.lines {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "gatehouse ") {
			continue
		}
		line, _, _ = strings.Cut(line, "||")
		line = varRef.ReplaceAllStringFunc(line, func(ref string) string {
			name := strings.Trim(ref, "${}")
			if v, ok := overrides[name]; ok {
				return v
			}
			v, ok := t.vars[name]
			Expect(ok).To(BeTrue(), "%s: %s is not defined in the template", t.file, name)
			return v
		})
		out = append(out, shellWords(line))
	}
	return out
}

// shellWords splits a command line as a POSIX shell would for the forms the templates use:
// blanks separate words, double and single quotes group them.
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	in, quote := false, rune(0)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

// junitFailures counts the failed and errored test cases of a JUnit file.
func junitFailures(path string) (tests, failed int) {
	GinkgoHelper()
	b, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	var doc struct {
		Suites []struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Errors   int `xml:"errors,attr"`
		} `xml:"testsuite"`
	}
	Expect(xml.Unmarshal(b, &doc)).To(Succeed(), "%s is not JUnit XML", path)
	for _, s := range doc.Suites {
		tests += s.Tests
		failed += s.Failures + s.Errors
	}
	return tests, failed
}

func templateSpecs() {
	Describe("the CI templates", func() {
		It("run their gatehouse lines as written and publish what those lines write", func(_ SpecContext) {
			scenarios, err := filepath.Abs("../../scenarios")
			Expect(err).NotTo(HaveOccurred())
			type run struct {
				t    template
				root string // the fresh directory the lines run from, as from a fresh checkout
				errs []string
			}
			runs := []*run{
				// broker-restart needs the container's restart; the other template runs the
				// same command, so another scenario shows its line works.
				{t: githubTemplate()}, {t: gitlabTemplate()},
			}
			scenarioOf := []string{"broker-restart.yaml", "gate-power-cut.yaml"}
			var wg sync.WaitGroup
			for i, r := range runs {
				cmds := r.t.gatehouseCommands(map[string]string{
					"BROKER_IMAGE": gatehouseImage,
					"SCENARIOS":    filepath.Join(scenarios, scenarioOf[i]),
				})
				Expect(cmds).To(HaveLen(2), "%s: want one gatehouse conform and one gatehouse run line", r.t.file)
				r.root = GinkgoT().TempDir()
				// The templates side by side, each one's lines in order.
				wg.Add(1)
				go func() {
					defer wg.Done()
					for _, args := range cmds {
						if args[1] == "conform" {
							// The full suite runs against this image elsewhere in this suite; here
							// the command line is under test, so one statement's checks will do.
							args = append(args, "--protocol", "3.1.1", "--label-filter", "MQTT-3.3.1-5")
						}
						cmd := exec.Command(gatehouseBin, args[1:]...)
						cmd.Dir = r.root
						cmd.Env = append(os.Environ(), "NO_COLOR=1")
						if out, err := runWithin(cmd, 3*time.Minute); err != nil {
							r.errs = append(r.errs, fmt.Sprintf("%s: %v\n%s", strings.Join(args, " "), err, out))
						}
					}
				}()
			}
			wg.Wait()

			for _, r := range runs {
				t := r.t
				Expect(r.errs).To(BeEmpty(), "%s", t.file)
				for _, p := range t.artifacts {
					Expect(filepath.Join(r.root, p)).To(BeADirectory(), "%s publishes %s, which its commands did not write", t.file, p)
				}
				junit := t.junit
				if len(junit) == 0 {
					// GitHub publishes the directories: each holds its junit.xml.
					for _, p := range t.artifacts {
						junit = append(junit, filepath.Join(p, "junit.xml"))
					}
				}
				Expect(junit).To(HaveLen(2), "%s", t.file)
				for _, j := range junit {
					tests, failed := junitFailures(filepath.Join(r.root, j))
					Expect(tests).To(BeNumerically(">", 0), "%s: %s holds no test case", t.file, j)
					Expect(failed).To(Equal(0), "%s: %s", t.file, j)
				}
			}
		}, NodeTimeout(8*time.Minute))

		It("splits command lines as the shell does", func() {
			Expect(shellWords(`gatehouse run a.yaml  b.yaml --broker "image:x:y?port=1883" --x 'a b'`)).To(Equal(
				[]string{"gatehouse", "run", "a.yaml", "b.yaml", "--broker", "image:x:y?port=1883", "--x", "a b"}))
		})
	})
}

// runWithin runs cmd and kills it if it outlasts limit.
func runWithin(cmd *exec.Cmd, limit time.Duration) (string, error) {
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(limit):
		// Interrupted first, so that the CLI removes its containers.
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		return out.String(), os.ErrDeadlineExceeded
	}
}
