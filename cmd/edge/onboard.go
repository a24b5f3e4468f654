package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/edgeproxy/edge/internal/auth"
	"github.com/edgeproxy/edge/internal/edge"
	"github.com/edgeproxy/edge/internal/onboard"
	"go.yaml.in/yaml/v3"
)

// errCheckFailed makes `edge check` exit 1 after printing its report.
var errCheckFailed = errors.New("problems found (marked FAIL above)")

// onboardConfig is the edge config plus what onboarding reads that the
// edge config does not hold yet.
type onboardConfig struct {
	*edge.Config
	Platform onboard.Platform
	extra    map[string]sourceExtra // by source name
}

// sourceExtra holds the onboarding keys of one source.
type sourceExtra struct {
	Sync      bool   `yaml:"sync"`
	KMSKeyARN string `yaml:"kms_key_arn"`
}

// loadOnboardConfig loads the config like every command, but first lifts
// out `platform:` and each source's `sync` and `kms_key_arn`.
//
// TODO(lead): once edge.Config holds `Platform onboard.Platform
// yaml:"platform"` and the source config holds Sync and KMSKeyARN, drop
// this shim and map those fields in onboardSource directly.
func loadOnboardConfig(path string) (*onboardConfig, error) {
	if path == "" {
		path = os.Getenv("EDGE_CONFIG")
	}
	if path == "" {
		return nil, usageError{errors.New("-config FILE (or EDGE_CONFIG) is required")}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	oc := &onboardConfig{extra: map[string]sourceExtra{}}
	var problems []error
	if len(root.Content) == 1 && root.Content[0].Kind == yaml.MappingNode {
		m := root.Content[0]
		for i := 0; i+1 < len(m.Content); i += 2 {
			switch m.Content[i].Value {
			case "platform":
				dec := m.Content[i+1]
				if err := decodeKnown(dec, &oc.Platform); err != nil {
					problems = append(problems, fmt.Errorf("platform: %v", err))
				}
				m.Content = append(m.Content[:i], m.Content[i+2:]...)
				i -= 2
			case "sources":
				for _, s := range m.Content[i+1].Content {
					liftSourceExtra(s, oc.extra)
				}
			}
		}
	}
	stripped, err := yaml.Marshal(&root)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := edge.ParseConfig(stripped, os.LookupEnv)
	if err != nil {
		if len(problems) > 0 {
			err = errors.Join(err, errors.Join(problems...))
		}
		return nil, err
	}
	oc.Platform.Defaults()
	problems = append(problems, oc.Platform.Validate("platform")...)
	if len(problems) > 0 {
		return nil, fmt.Errorf("config has problems:\n%w", errors.Join(problems...))
	}
	oc.Config = cfg
	return oc, nil
}

// liftSourceExtra removes sync and kms_key_arn from one sources[] entry
// and records them by the entry's name.
func liftSourceExtra(s *yaml.Node, into map[string]sourceExtra) {
	if s.Kind != yaml.MappingNode {
		return
	}
	var name string
	var ex sourceExtra
	for i := 0; i+1 < len(s.Content); i += 2 {
		k, v := s.Content[i].Value, s.Content[i+1]
		switch k {
		case "name":
			name = v.Value
		case "sync":
			ex.Sync = v.Value == "true"
			s.Content = append(s.Content[:i], s.Content[i+2:]...)
			i -= 2
		case "kms_key_arn":
			ex.KMSKeyARN = os.ExpandEnv(v.Value)
			s.Content = append(s.Content[:i], s.Content[i+2:]...)
			i -= 2
		}
	}
	into[name] = ex
}

func decodeKnown(n *yaml.Node, v any) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// onboardSource maps one configured source into what onboarding takes.
func (oc *onboardConfig) onboardSource(sc edge.SourceConfig) onboard.Source {
	ex := oc.extra[sc.Name]
	return onboard.Source{
		Name:      sc.Name,
		Config:    sc.Config,
		Prefix:    sc.Prefix,
		Mode:      sc.Mode,
		Sync:      ex.Sync,
		KMSKeyARN: ex.KMSKeyARN,
		Origins:   oc.CORS.AllowedOrigins,
	}
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
