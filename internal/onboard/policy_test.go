package onboard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgeproxy/edge/internal/signer"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it); got:\n%s", p, got)
	}
}

const testKMSKey = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

var origins = []string{"https://*.segments.ai", "http://localhost:*", "https://app.example.com", "*"}

// policyCases cover every document kind, provider and partition.
var policyCases = []struct {
	name  string
	src   Source
	plat  Platform
	kinds []string
}{
	{"s3-aws-assume-sync-kms", Source{Name: "customer-b", Prefix: "datasets/42/", Sync: true, KMSKeyARN: testKMSKey, Origins: origins,
		Config: signer.Config{Provider: "s3", Bucket: "partner-frames", Region: "eu-west-1",
			Credentials: signer.Credentials{Type: "assume_role", RoleARN: "arn:aws:iam::123456789012:role/edge-read", ExternalID: "ext-7f3a"}}},
		Platform{AWSPrincipal: "arn:aws:iam::111122223333:role/edge"},
		[]string{KindAWSTrust, KindAWSPermission, KindAWSBucket, KindAWSCORS}},
	{"s3-aws-assume-suggested-external-id", Source{Name: "customer-c", Prefix: "images/", Mode: ModeStream,
		Config: signer.Config{Provider: "s3", Bucket: "acme-images", Region: "us-east-1",
			Credentials: signer.Credentials{Type: "assume_role", RoleARN: "arn:aws:iam::123456789012:role/edge-read"}}},
		Platform{AWSPrincipal: "111122223333"},
		[]string{KindAWSTrust, KindAWSPermission, KindAWSBucket}},
	{"s3-aws-cn-whole-bucket", Source{Name: "customer-cn", Origins: []string{"https://app.example.cn"},
		Config: signer.Config{Provider: "s3", Bucket: "acme-cn", Region: "cn-north-1",
			Credentials: signer.Credentials{Type: "static", AccessKeyID: "AKID", SecretAccessKey: "never-printed"}}},
		Platform{AWSPrincipal: "arn:aws-cn:iam::111122223333:user/edge"},
		[]string{KindAWSPermission, KindAWSBucket, KindAWSCORS}},
	{"s3-aws-us-gov-caller-identity", Source{Name: "customer-gov", Prefix: "frames/", Mode: ModeStream, Sync: true,
		Config: signer.Config{Provider: "s3", Bucket: "gov-frames", Region: "us-gov-west-1", Credentials: signer.Credentials{Type: "default"}}},
		Platform{}, // the caller identity: an assumed-role session
		[]string{KindAWSPermission, KindAWSBucket}},
	{"gcs-service-account-sync", Source{Name: "customer-g", Prefix: "images/", Sync: true, Origins: origins,
		Config: signer.Config{Provider: "gcs", Bucket: "acme-gcs-images",
			Credentials: signer.Credentials{Type: "service_account", KeyJSON: `{"type":"service_account","client_email":"edge@platform-project.iam.gserviceaccount.com","private_key":"never-printed"}`}}},
		Platform{},
		[]string{KindGCSIAM, KindGCSCORS}},
	{"gcs-hmac-platform-stream", Source{Name: "customer-gh", Mode: ModeStream,
		Config: signer.Config{Provider: "gcs", Bucket: "acme-gcs-frames", Credentials: signer.Credentials{Type: "hmac", AccessKeyID: "GOOG1", SecretAccessKey: "never-printed"}}},
		Platform{GCSServiceAccount: "edge@platform-project.iam.gserviceaccount.com"},
		[]string{KindGCSIAM}},
	{"azure-default", Source{Name: "customer-z", Prefix: "datasets/42/", Origins: origins,
		Config: signer.Config{Provider: "azure", Account: "acmestorage", Bucket: "frames", Credentials: signer.Credentials{Type: "default"}}},
		Platform{AzurePrincipalID: "11111111-2222-3333-4444-555555555555"},
		[]string{KindAzureRoles, KindAzureCORS}},
	{"azure-shared-key-stream", Source{Name: "customer-zk", Mode: ModeStream,
		Config: signer.Config{Provider: "azure", Account: "acmestorage", Bucket: "clips", Credentials: signer.Credentials{Type: "shared_key", AccountKey: "bmV2ZXItcHJpbnRlZA=="}}},
		Platform{},
		[]string{KindAzureRoles}},
	{"file", Source{Name: "local", Config: signer.Config{Provider: "file", Root: "/srv/images"}}, Platform{}, nil},
}

// TestPolicyGolden pins the text and the JSON of every document kind, for
// each provider and partition, and checks what each document must say.
func TestPolicyGolden(t *testing.T) {
	for _, tc := range policyCases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Policy(context.Background(), tc.src, PolicyOptions{
				Platform: tc.plat,
				Rand:     bytes.NewReader(bytes.Repeat([]byte{0xab}, 64)),
				CallerIdentity: func(context.Context) (string, error) {
					return "arn:aws-us-gov:sts::111122223333:assumed-role/edge/i-0abc", nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, d := range res.Documents {
				kinds = append(kinds, d.Kind)
			}
			if strings.Join(kinds, ",") != strings.Join(tc.kinds, ",") {
				t.Errorf("kinds %v, want %v", kinds, tc.kinds)
			}
			js, err := json.MarshalIndent(res, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "policy-"+tc.name+".json.golden", append(js, '\n'))
			var txt bytes.Buffer
			if err := res.WriteText(&txt); err != nil {
				t.Fatal(err)
			}
			golden(t, "policy-"+tc.name+".txt.golden", txt.Bytes())
			if strings.Contains(string(js)+txt.String(), "never-printed") || strings.Contains(string(js), "bmV2ZXItcHJpbnRlZA") {
				t.Error("a secret of the source is in the output")
			}
			checkDocuments(t, tc.src, res)
		})
	}
}

// checkDocuments asserts what every document must say, independently of
// the golden files.
func checkDocuments(t *testing.T, src Source, res *PolicyResult) {
	t.Helper()
	part := Partition(src.Region)
	for _, d := range res.Documents {
		raw, _ := json.Marshal(d.JSON)
		s := string(raw)
		switch d.Kind {
		case KindAWSPermission, KindAWSBucket:
			var p struct {
				Version   string
				Statement []struct {
					Effect    string
					Principal map[string]string
					Action    string
					Resource  string
					Condition map[string]map[string][]string
				}
			}
			if err := json.Unmarshal(raw, &p); err != nil || p.Version != "2012-10-17" {
				t.Fatalf("%s: not an IAM policy: %v %s", d.Kind, err, s)
			}
			var actions []string
			for _, st := range p.Statement {
				actions = append(actions, st.Action)
				if st.Effect != "Allow" {
					t.Errorf("%s: effect %s", d.Kind, st.Effect)
				}
				if (d.Kind == KindAWSBucket) != (st.Principal["AWS"] != "") {
					t.Errorf("%s: principal %v", d.Kind, st.Principal)
				}
				switch st.Action {
				case "s3:GetObject":
					if want := "arn:" + part + ":s3:::" + src.Bucket + "/" + src.Prefix + "*"; st.Resource != want {
						t.Errorf("%s: GetObject on %s, want %s", d.Kind, st.Resource, want)
					}
				case "s3:ListBucket":
					if want := "arn:" + part + ":s3:::" + src.Bucket; st.Resource != want {
						t.Errorf("%s: ListBucket on %s, want %s", d.Kind, st.Resource, want)
					}
					if got := st.Condition["StringLike"]["s3:prefix"]; src.Prefix != "" && (len(got) != 1 || got[0] != src.Prefix+"*") {
						t.Errorf("%s: s3:prefix condition %v", d.Kind, got)
					}
				case "kms:Decrypt":
					if st.Resource != src.KMSKeyARN || d.Kind == KindAWSBucket {
						t.Errorf("%s: kms:Decrypt on %s", d.Kind, st.Resource)
					}
				default:
					t.Errorf("%s: unexpected action %s", d.Kind, st.Action)
				}
			}
			want := "s3:GetObject"
			if src.Sync {
				want += ",s3:ListBucket"
			}
			if src.KMSKeyARN != "" && d.Kind == KindAWSPermission {
				want += ",kms:Decrypt"
			}
			if strings.Join(actions, ",") != want {
				t.Errorf("%s: actions %v, want %s", d.Kind, actions, want)
			}
		case KindAWSTrust:
			if !strings.Contains(s, `"sts:AssumeRole"`) || !strings.Contains(s, `"sts:ExternalId"`) || !strings.Contains(s, `"AWS":"arn:`) {
				t.Errorf("trust policy %s", s)
			}
			if src.Credentials.ExternalID == "" && !strings.Contains(d.Steps, "suggested") {
				t.Errorf("a suggested external id is not said to be one: %s", d.Steps)
			}
		case KindAWSCORS, KindGCSCORS, KindAzureCORS:
			if strings.Contains(s, `"*"`) {
				t.Errorf("%s allows *: %s", d.Kind, s)
			}
			if !strings.Contains(s, `"null"`) {
				t.Errorf("%s lacks null: %s", d.Kind, s)
			}
		case KindGCSIAM:
			if src.Prefix != "" && !strings.Contains(s, `resource.name.startsWith(\"projects/_/buckets/`+src.Bucket+`/objects/`+src.Prefix+`\")`) {
				t.Errorf("gcs binding lacks the prefix condition: %s", s)
			}
		case KindAzureRoles:
			if !strings.Contains(s, "Storage Blob Data Reader") || !strings.Contains(s, "/containers/"+src.Bucket) || !strings.Contains(s, "Storage Blob Delegator") {
				t.Errorf("azure roles %s", s)
			}
		}
	}
}

func TestPartition(t *testing.T) {
	for region, want := range map[string]string{"eu-west-1": "aws", "us-east-1": "aws", "": "aws", "cn-north-1": "aws-cn", "cn-northwest-1": "aws-cn", "us-gov-west-1": "aws-us-gov", "us-gov-east-1": "aws-us-gov"} {
		if got := Partition(region); got != want {
			t.Errorf("Partition(%q) = %q, want %q", region, got, want)
		}
	}
}

// TestPolicyNoPrincipal: without platform.aws_principal and without a
// caller identity, Policy says which key to set.
func TestPolicyNoPrincipal(t *testing.T) {
	_, err := Policy(context.Background(), policyCases[0].src, PolicyOptions{CallerIdentity: func(context.Context) (string, error) {
		return "", errors.New("no credentials in the chain")
	}})
	if err == nil || !strings.Contains(err.Error(), "platform.aws_principal") {
		t.Errorf("err = %v, want one naming platform.aws_principal", err)
	}
}

func TestPlatformValidate(t *testing.T) {
	for _, tt := range []struct {
		p    Platform
		bad  []string
		leak string
	}{
		{Platform{AWSPrincipal: "arn:aws:iam::111122223333:role/edge", GCSServiceAccount: "edge@p.iam.gserviceaccount.com", AzurePrincipalID: "11111111-2222-3333-4444-555555555555"}, nil, ""},
		{Platform{AWSPrincipal: "111122223333"}, nil, ""},
		{Platform{AWSPrincipal: "wJalrXUtnFEMI/K7MDENG"}, []string{"platform.aws_principal"}, "wJalrXUtnFEMI"},
		{Platform{GCSServiceAccount: "secret value", AzurePrincipalID: "not-a-guid"}, []string{"platform.gcs_service_account", "platform.azure_principal_id"}, "secret value"},
	} {
		errs := tt.p.Validate("platform")
		if len(errs) != len(tt.bad) {
			t.Errorf("%+v: %v, want %v", tt.p, errs, tt.bad)
			continue
		}
		for i, e := range errs {
			if !strings.HasPrefix(e.Error(), tt.bad[i]+":") {
				t.Errorf("error %q does not name %s", e, tt.bad[i])
			}
			if tt.leak != "" && strings.Contains(e.Error(), tt.leak) {
				t.Errorf("error %q echoes the value", e)
			}
		}
	}
}

// TestPolicyAccountPrincipalPartition: a 12-digit platform account is
// the root principal of the bucket's partition, as every ARN of the
// documents is: arn:aws:iam:: names no principal in aws-cn or aws-us-gov.
func TestPolicyAccountPrincipalPartition(t *testing.T) {
	for region, want := range map[string]string{
		"cn-north-1":    "arn:aws-cn:iam::111122223333:root",
		"us-gov-west-1": "arn:aws-us-gov:iam::111122223333:root",
		"eu-west-1":     "arn:aws:iam::111122223333:root",
	} {
		t.Run(region, func(t *testing.T) {
			src := Source{Name: "s", Config: signer.Config{Provider: "s3", Bucket: "b", Region: region, Credentials: signer.Credentials{Type: "default"}}}
			res, err := Policy(context.Background(), src, PolicyOptions{Platform: Platform{AWSPrincipal: "111122223333"}})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range res.Documents {
				if d.Kind != KindAWSBucket {
					continue
				}
				if got := d.JSON.(iamPolicy).Statement[0].Principal.AWS; got != want {
					t.Errorf("got principal %s, want %s", got, want)
				}
				return
			}
			t.Fatal("no bucket policy")
		})
	}
}

// TestPolicyKeyFileNotEchoed: an unreadable key file is named by its
// key, never by its path (the admin route answers the message).
func TestPolicyKeyFileNotEchoed(t *testing.T) {
	src := Source{Name: "g", Config: signer.Config{Provider: "gcs", Bucket: "b", Credentials: signer.Credentials{Type: "service_account", KeyFile: "/nonexistent/s3cr3t/sa.json"}}}
	_, err := Policy(context.Background(), src, PolicyOptions{})
	if err == nil {
		t.Fatal("got no error, want the key file unreadable")
	}
	if strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "credentials.key_file") {
		t.Errorf("got %q, want credentials.key_file named and the path left out", err)
	}
}

// TestPolicyAzureSyncLists: with a prefix, the reader's condition
// refuses listing (Blob.List has no path) unless the source syncs; then
// listing is allowed with the prefix only.
func TestPolicyAzureSyncLists(t *testing.T) {
	for _, sync := range []bool{false, true} {
		src := Source{Name: "z", Prefix: "datasets/42/", Sync: sync, Config: signer.Config{Provider: "azure", Account: "acct", Bucket: "frames", Credentials: signer.Credentials{Type: "default"}}}
		res, err := Policy(context.Background(), src, PolicyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cond := res.Documents[0].JSON.(map[string]any)["roleAssignments"].([]azureAssignment)[0].Condition
		lists := strings.Contains(cond, "NOT SubOperationMatches{'Blob.List'}") && strings.Contains(cond, "blobs:prefix] StringStartsWith 'datasets/42/'")
		if lists != sync {
			t.Errorf("sync %v: condition %s: listing under the prefix allowed %v, want %v", sync, cond, lists, sync)
		}
	}
}
