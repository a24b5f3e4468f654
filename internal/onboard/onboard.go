// Package onboard is the customer's side of a connection: the documents a
// customer pastes into their cloud console so the platform's edge may read
// a bucket (Policy), and a step-by-step probe of a source that says what
// is wrong and which of those documents fixes it (Check).
//
// It takes plain values (Source, Platform) and never imports the HTTP
// layer; cmd/edge and the admin routes map their config into them.
package onboard

import (
	"fmt"
	"strings"

	"github.com/edgeproxy/edge/internal/signer"
)

// Modes of a source, as the config names them.
const (
	ModeRedirect = "redirect"
	ModeStream   = "stream"
)

// Source is what onboarding needs to know about one source: its storage
// half (provider, bucket, region, credentials), the confinement prefix,
// the mode, whether the platform lists it (sync), its SSE-KMS key, and the
// page origins the edge serves (the config's cors.allowed_origins).
type Source struct {
	Name string
	signer.Config
	Prefix    string
	Mode      string // redirect | stream; empty = redirect
	Sync      bool
	KMSKeyARN string
	Origins   []string
}

// Platform is the platform's own identity, the principal a customer grants
// access to (the config's `platform:` section).
type Platform struct {
	// AWSPrincipal is the platform's IAM role or user ARN; empty = the
	// identity of the default credential chain (sts:GetCallerIdentity).
	AWSPrincipal string `yaml:"aws_principal"`
	// GCSServiceAccount is the service account e-mail; empty = the
	// client_email of the source's key file.
	GCSServiceAccount string `yaml:"gcs_service_account"`
	// AzurePrincipalID is the object id of the edge's managed identity.
	AzurePrincipalID string `yaml:"azure_principal_id"`
}

// Defaults fills what the operator left out: nothing today (every field
// has a run-time fallback), kept for the config convention.
func (p *Platform) Defaults() {}

// Validate returns every problem with p, each naming its key below key
// (for example "platform"). Messages never quote a value.
func (p *Platform) Validate(key string) []error {
	var errs []error
	if p.AWSPrincipal != "" && !validAWSPrincipal(p.AWSPrincipal) {
		errs = append(errs, fmt.Errorf("%s.aws_principal: want an IAM ARN (arn:PARTITION:iam::ACCOUNT:role/NAME, :user/NAME or :root) or a 12-digit account id", key))
	}
	if p.GCSServiceAccount != "" && (!strings.Contains(p.GCSServiceAccount, "@") || strings.ContainsAny(p.GCSServiceAccount, " \t\n\"")) {
		errs = append(errs, fmt.Errorf("%s.gcs_service_account: want a service account e-mail (NAME@PROJECT.iam.gserviceaccount.com)", key))
	}
	if p.AzurePrincipalID != "" && !validGUID(p.AzurePrincipalID) {
		errs = append(errs, fmt.Errorf("%s.azure_principal_id: want the identity's object id (a GUID)", key))
	}
	return errs
}

func validAWSPrincipal(s string) bool {
	if len(s) == 12 && strings.Trim(s, "0123456789") == "" {
		return true
	}
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] == "" || (parts[2] != "iam" && parts[2] != "sts") {
		return false
	}
	if len(parts[4]) != 12 || strings.Trim(parts[4], "0123456789") != "" {
		return false
	}
	return parts[5] != "" && !strings.ContainsAny(s, " \t\n\"*")
}

func validGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}

// mode returns the source's mode, redirect when unset.
func (s *Source) mode() string {
	if s.Mode == "" {
		return ModeRedirect
	}
	return s.Mode
}

// Partition is the AWS partition of a region: aws-cn for cn-*, aws-us-gov
// for us-gov-*, aws otherwise. ARNs and principals name it.
func Partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}
