// Package tap is a minimal, API-compatible stand-in for
// github.com/mndrix/tap-go, which is not packaged in Debian. It implements
// only what the runtime-tools validation programs use. Written for rcompose's
// conformance harness (conformance/run.sh); it is not the upstream code.
package tap

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// T is a TAP producer.
type T struct {
	// shared by the copies that Todo returns, so numbering stays sequential
	nextTestNumber *int
	// TODO marks the following tests as TODO (kept for API compatibility).
	TODO   bool
	Writer io.Writer
}

// New creates a TAP producer writing to standard output.
func New() *T {
	n := 1
	return &T{nextTestNumber: &n, Writer: os.Stdout}
}

func (t *T) w() io.Writer {
	if t.Writer == nil {
		return os.Stdout
	}
	return t.Writer
}

func (t *T) printf(format string, a ...interface{}) {
	fmt.Fprintf(t.w(), format, a...)
}

// Header prints the TAP version line and, when testCount > 0, the plan.
func (t *T) Header(testCount int) {
	t.printf("TAP version 13\n")
	if testCount > 0 {
		t.printf("1..%d\n", testCount)
	}
}

// Ok reports a test result.
func (t *T) Ok(test bool, description string) {
	ok := "ok"
	if !test {
		ok = "not ok"
	}
	description = strings.ReplaceAll(description, "\n", " ")
	if t.TODO {
		t.printf("%s %d # TODO %s\n", ok, *t.nextTestNumber, description)
	} else {
		t.printf("%s %d - %s\n", ok, *t.nextTestNumber, description)
	}
	*t.nextTestNumber++
}

// Fail reports a failing test.
func (t *T) Fail(description string) { t.Ok(false, description) }

// Pass reports a passing test.
func (t *T) Pass(description string) { t.Ok(true, description) }

// Count returns the number of tests reported so far.
func (t *T) Count() int { return *t.nextTestNumber - 1 }

// AutoPlan prints the plan from the number of tests reported so far.
func (t *T) AutoPlan() { t.printf("1..%d\n", t.Count()) }

// Todo returns a producer whose following tests are TODO.
func (t *T) Todo() *T {
	n := *t
	n.TODO = true
	return &n
}

// Skip reports count skipped tests.
func (t *T) Skip(count int, description string) {
	for i := 0; i < count; i++ {
		t.printf("ok %d # SKIP %s\n", *t.nextTestNumber, description)
		*t.nextTestNumber++
	}
}

// Diagnostic prints a diagnostic comment.
func (t *T) Diagnostic(message string) {
	for _, line := range strings.Split(message, "\n") {
		t.printf("# %s\n", line)
	}
}

// Diagnosticf prints a formatted diagnostic comment.
func (t *T) Diagnosticf(format string, a ...interface{}) {
	t.Diagnostic(fmt.Sprintf(format, a...))
}

// YAML prints a YAML diagnostic block. JSON is valid YAML, so the
// value is serialised as indented JSON.
func (t *T) YAML(message interface{}) error {
	b, err := json.MarshalIndent(message, "  ", "  ")
	if err != nil {
		return err
	}
	t.printf("  ---\n  %s\n  ...\n", string(b))
	return nil
}
