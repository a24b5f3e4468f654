package onboard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteText prints the documents for an operator: for each, what to paste
// where, step by step, then the document itself.
func (r *PolicyResult) WriteText(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Source %s (%s): what the customer pastes on their side\n", r.Name, r.Provider)
	if len(r.Documents) == 0 {
		b.WriteString("\nNothing: this source needs no grant on the customer's side.\n")
	}
	for i, d := range r.Documents {
		fmt.Fprintf(&b, "\n%d. %s [%s]\n\n", i+1, d.Title, d.Kind)
		for _, line := range strings.Split(d.Steps, "\n") {
			fmt.Fprintf(&b, "   %s\n", line)
		}
		js, err := json.MarshalIndent(d.JSON, "   ", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "\n   %s\n", js)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// statusMark is how the text output marks a step's status.
var statusMark = map[string]string{StatusOK: "ok", StatusWarn: "!", StatusFail: "x", StatusSkipped: "-"}

// WriteText prints the check's steps for an operator, one line each, with
// the code and the fix of every step that warns or fails.
func (r CheckResult) WriteText(w io.Writer) error {
	var b bytes.Buffer
	verdict := "ok"
	if !r.OK {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "source %s: %s\n", r.Name, verdict)
	for _, s := range r.Steps {
		fmt.Fprintf(&b, "  %-2s %-11s %s", statusMark[s.Status], s.Step, s.Message)
		if s.Code != "" {
			fmt.Fprintf(&b, " [%s]", s.Code)
		}
		b.WriteByte('\n')
		if s.Fix != "" && (s.Status == StatusFail || s.Status == StatusWarn) {
			fmt.Fprintf(&b, "     %-11s fix: %s\n", "", s.Fix)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// ConfigFailed is the result of a check that could not start because the
// config is invalid: the config step fails with every problem, the rest
// are skipped.
func ConfigFailed(name string, problems []error) CheckResult {
	c := &checker{src: Source{Name: name}}
	msgs := make([]string, len(problems))
	for i, p := range problems {
		msgs[i] = p.Error()
	}
	c.add(StepConfig, StatusFail, CodeConfigInvalid, strings.Join(msgs, "; "), "correct the keys named, then check again")
	c.skipRest("the config is invalid")
	return CheckResult{Name: name, OK: false, Steps: c.steps}
}
