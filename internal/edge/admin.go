package edge

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/edgeproxy/edge/internal/admin"
	"github.com/edgeproxy/edge/internal/httperr"
	"github.com/edgeproxy/edge/internal/onboard"
	"github.com/edgeproxy/edge/internal/source"
)

// OnboardSource maps one source into what onboarding takes: its storage
// half, prefix, mode, sync, KMS key, and the config's CORS origins.
func OnboardSource(cfg *Config, sc source.Config) onboard.Source {
	return onboard.Source{
		Name:      sc.Name,
		Config:    sc.Config,
		Prefix:    sc.Prefix,
		Mode:      sc.Mode,
		Sync:      sc.Sync,
		KMSKeyARN: sc.KMSKeyARN,
		Origins:   cfg.CORS.AllowedOrigins,
	}
}

// maxSpecBody bounds a POSTed source spec.
const maxSpecBody = 64 << 10

// AdminOptions are the admin routes' hooks for tests.
type AdminOptions struct {
	Check  onboard.CheckOptions
	Policy onboard.PolicyOptions
}

// registerAdmin adds every admin route to a. Each route reads the Server
// in force through cur, so a SIGHUP's new config answers from then on.
func registerAdmin(a *admin.Server, cur func() *Server, opts AdminOptions) {
	admin.RegisterConnections(a, connView{cur})
	// The manifest, streamed as it is listed (ServeObjects writes nothing
	// more once the stream has started, so admin renders only its early
	// errors).
	a.Handle(http.MethodGet, "/admin/v1/connections/{name}/objects", func(w http.ResponseWriter, r *http.Request) error {
		return cur().ServeObjects(w, r, r.PathValue("name"))
	})
	a.Handle(http.MethodPost, "/admin/v1/check", func(w http.ResponseWriter, r *http.Request) error {
		s := cur()
		sc, problems, err := readSpec(r)
		if err != nil {
			return err
		}
		if problems != nil {
			return admin.WriteJSON(w, onboard.ConfigFailed(sc.Name, problems))
		}
		res := onboard.Check(r.Context(), OnboardSource(s.cfg, *sc), opts.Check)
		return admin.WriteJSON(w, res)
	})
	a.Handle(http.MethodPost, "/admin/v1/policy", func(w http.ResponseWriter, r *http.Request) error {
		s := cur()
		sc, problems, err := readSpec(r)
		if err != nil {
			return err
		}
		if problems != nil {
			msgs := make([]string, len(problems))
			for i, p := range problems {
				msgs[i] = p.Error()
			}
			return httperr.New(http.StatusBadRequest, "config_invalid", "the source spec has problems: "+strings.Join(msgs, "; "), nil)
		}
		po := opts.Policy
		po.Platform = s.cfg.Platform
		res, err := onboard.Policy(r.Context(), OnboardSource(s.cfg, *sc), po)
		if err != nil {
			return httperr.New(http.StatusBadGateway, "policy_failed", "the policy documents could not be made: "+Redact(err.Error()), err)
		}
		return admin.WriteJSON(w, res)
	})
}

// readSpec reads a POSTed source spec (JSON, bounded). A spec that does
// not parse or validate gives its problems (naming keys, never values);
// err is for a body that cannot be read at all.
func readSpec(r *http.Request) (*source.Config, []error, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxSpecBody+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, nil, err
		}
		return nil, nil, httperr.New(http.StatusBadRequest, "bad_body", "the request body could not be read", err)
	}
	if len(body) > maxSpecBody {
		return nil, nil, httperr.New(http.StatusRequestEntityTooLarge, "body_too_large", "the source spec is larger than 64 KiB", nil)
	}
	if !json.Valid(body) {
		return &source.Config{}, []error{errors.New("the body must be a source spec as a JSON object")}, nil
	}
	if t := strings.TrimSpace(string(body)); !strings.HasPrefix(t, "{") {
		return &source.Config{}, []error{errors.New("the body must be a source spec as a JSON object")}, nil
	}
	// A POSTed spec comes from outside (often a customer's, forwarded):
	// the edge's own environment (admin tokens, the DSN, cloud keys) never
	// expands into it, or the answer would echo it.
	sc, err := source.ParseSpec(body, func(string) (string, bool) { return "", false })
	if err != nil {
		// The check result still names the source when the spec does.
		var named struct {
			Name any `json:"name"`
		}
		_ = json.Unmarshal(body, &named)
		name, _ := named.Name.(string)
		if !source.ValidName(name) {
			name = ""
		}
		return &source.Config{Name: name}, specProblems(err), nil
	}
	return sc, nil, nil
}

// specProblems splits ParseSpec's error into its problems.
func specProblems(err error) []error {
	for e := err; e != nil; {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			return j.Unwrap()
		}
		e = errors.Unwrap(e)
	}
	return []error{err}
}

// connView is the admin API's view of the Server in force.
type connView struct{ cur func() *Server }

func (v connView) List() []admin.Conn { return v.cur().Connections() }

func (v connView) Get(name string) (admin.Conn, bool) {
	for _, c := range v.cur().Connections() {
		if c.Name == name && c.State != admin.StateConflict {
			return c, true
		}
	}
	// A name held only by conflicting entries (config won elsewhere is
	// impossible here): show the first.
	for _, c := range v.cur().Connections() {
		if c.Name == name {
			return c, true
		}
	}
	return admin.Conn{}, false
}
