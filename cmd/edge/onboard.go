package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/edgeproxy/edge/internal/auth"
	"github.com/edgeproxy/edge/internal/edge"
	"github.com/edgeproxy/edge/internal/onboard"
)

// errCheckFailed makes `edge check` exit 1 after printing its report.
var errCheckFailed = errors.New("problems found (marked FAIL above)")

// onboardConfig is the edge config, with the onboarding views of its
// sources.
type onboardConfig struct {
	*edge.Config
}

// loadOnboardConfig loads the config like every command: `platform`,
// `sync` and `kms_key_arn` are keys of the edge config.
func loadOnboardConfig(path string) (*onboardConfig, error) {
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, err
	}
	return &onboardConfig{Config: cfg}, nil
}

// onboardSource maps one configured source into what onboarding takes.
func (oc *onboardConfig) onboardSource(sc edge.SourceConfig) onboard.Source {
	return edge.OnboardSource(oc.Config, sc)
}

func (oc *onboardConfig) source(name string) (edge.SourceConfig, bool) {
	for _, sc := range oc.Sources {
		if sc.Name == name {
			return sc, true
		}
	}
	return edge.SourceConfig{}, false
}

// check is `edge check -config FILE [-source NAME] [-json]`: the config,
// then every source (or one) probed step by step. -json prints one check
// result document per source, one per line.
func check(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", stderr)
	cfgPath := fs.String("config", "", "config file (default $EDGE_CONFIG)")
	only := fs.String("source", "", "check only this source")
	asJSON := fs.Bool("json", false, "print the check result documents as JSON, one per line")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	oc, err := loadOnboardConfig(*cfgPath)
	if err != nil {
		var ue usageError
		if *asJSON && !errors.As(err, &ue) {
			writeJSONLine(stdout, onboard.ConfigFailed(*only, []error{err}))
			return errCheckFailed
		}
		return err
	}
	var sources []edge.SourceConfig
	if *only != "" {
		sc, ok := oc.source(*only)
		if !ok {
			return usageError{fmt.Errorf("-source: no source named %q in the config", *only)}
		}
		sources = []edge.SourceConfig{sc}
	} else {
		sources = oc.Sources
	}
	var problems []error
	if v, err := auth.NewVerifier(oc.Auth, time.Now); err != nil {
		problems = append(problems, fmt.Errorf("auth: %v", err))
	} else {
		actx, cancel := context.WithTimeout(ctx, onboard.DefaultStepTimeout)
		if err := v.Check(actx); err != nil {
			problems = append(problems, fmt.Errorf("auth.jwks_url: %s", edge.Redact(err.Error())))
		}
		cancel()
	}
	if !*asJSON {
		fmt.Fprintf(stdout, "config: ok (%d sources)\n", len(oc.Sources))
	}
	failed := false
	for _, sc := range sources {
		r := onboard.Check(ctx, oc.onboardSource(sc), onboard.CheckOptions{Problems: problems})
		failed = failed || !r.OK
		if *asJSON {
			writeJSONLine(stdout, r)
		} else if err := r.WriteText(stdout); err != nil {
			return err
		}
	}
	if failed {
		return errCheckFailed
	}
	return nil
}

func writeJSONLine(w io.Writer, v any) {
	b, _ := json.Marshal(v)
	w.Write(append(b, '\n'))
}

// policy is `edge policy -config FILE [-json] SOURCE`: what the customer
// pastes on their side for that source.
func policy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("policy", stderr)
	cfgPath := fs.String("config", "", "config file (default $EDGE_CONFIG)")
	asJSON := fs.Bool("json", false, "print the policy documents as JSON")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("exactly one SOURCE is required")}
	}
	oc, err := loadOnboardConfig(*cfgPath)
	if err != nil {
		return err
	}
	sc, ok := oc.source(fs.Arg(0))
	if !ok {
		return fmt.Errorf("no source named %q in the config (sources: %s)", fs.Arg(0), sourceNames(oc.Sources))
	}
	pctx, cancel := context.WithTimeout(ctx, onboard.DefaultCheckTimeout)
	defer cancel()
	res, err := onboard.Policy(pctx, oc.onboardSource(sc), onboard.PolicyOptions{Platform: oc.Platform})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	return res.WriteText(stdout)
}

func sourceNames(srcs []edge.SourceConfig) string {
	names := make([]string, len(srcs))
	for i, s := range srcs {
		names[i] = s.Name
	}
	return strings.Join(names, ", ")
}
