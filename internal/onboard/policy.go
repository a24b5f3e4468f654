package onboard

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/edgeproxy/edge/internal/signer"
)

// Document kinds, as PRODUCT.md names them.
const (
	KindAWSTrust      = "aws_trust_policy"
	KindAWSPermission = "aws_permission_policy"
	KindAWSBucket     = "aws_bucket_policy"
	KindAWSCORS       = "aws_cors"
	KindGCSIAM        = "gcs_iam"
	KindGCSCORS       = "gcs_cors"
	KindAzureRoles    = "azure_roles"
	KindAzureCORS     = "azure_cors"
)

// PolicyResult is what the customer must paste on their side for one
// source: the answer of `edge policy -json` and POST /admin/v1/policy.
type PolicyResult struct {
	Name      string     `json:"name"`
	Provider  string     `json:"provider"`
	Documents []Document `json:"documents"`
}

// Document is one thing to paste: Steps says where, JSON is the document
// itself, valid as pasted.
type Document struct {
	Kind  string `json:"kind"`
	Title string `json:"title"`
	Steps string `json:"steps"`
	JSON  any    `json:"json"`
}

// PolicyOptions carry what Policy takes from outside the source.
type PolicyOptions struct {
	Platform Platform
	// CallerIdentity returns the ARN of the identity the edge runs as, for
	// AWS sources when Platform.AWSPrincipal is empty; nil calls
	// sts:GetCallerIdentity with the SDK's default chain.
	CallerIdentity func(ctx context.Context) (string, error)
	// Rand is the source of suggested external IDs; nil = crypto/rand.
	Rand io.Reader
}

// Policy builds the documents a customer pastes for src: for s3 the
// trust policy (assume_role), the permission policy, the bucket policy
// (the cross-account alternative) and the bucket CORS (redirect mode); for
// gcs the IAM binding and CORS; for azure the role assignments and CORS.
// Everything is tailored to the bucket, prefix, region's partition,
// external ID, KMS key, sync and origins. File sources need nothing.
func Policy(ctx context.Context, src Source, opts PolicyOptions) (*PolicyResult, error) {
	res := &PolicyResult{Name: src.Name, Provider: src.Provider, Documents: []Document{}}
	switch src.Provider {
	case signer.ProviderS3:
		docs, err := awsDocuments(ctx, src, opts)
		if err != nil {
			return nil, err
		}
		res.Documents = docs
	case signer.ProviderGCS:
		docs, err := gcsDocuments(src, opts)
		if err != nil {
			return nil, err
		}
		res.Documents = docs
	case signer.ProviderAzure:
		res.Documents = azureDocuments(src, opts)
	case signer.ProviderFile:
	default:
		return nil, fmt.Errorf("provider: unknown provider %q", src.Provider)
	}
	return res, nil
}

// IAM policy JSON, in the member order AWS's own examples use.
type iamPolicy struct {
	Version   string         `json:"Version"`
	Statement []iamStatement `json:"Statement"`
}

type iamStatement struct {
	Sid       string                    `json:"Sid,omitempty"`
	Effect    string                    `json:"Effect"`
	Principal *awsPrincipal             `json:"Principal,omitempty"`
	Action    any                       `json:"Action"`
	Resource  any                       `json:"Resource,omitempty"`
	Condition map[string]map[string]any `json:"Condition,omitempty"`
}

type awsPrincipal struct {
	AWS string `json:"AWS"`
}

// s3CORSRule is one rule of S3's CORS configuration, as the console's
// editor takes it.
type s3CORSRule struct {
	AllowedHeaders []string `json:"AllowedHeaders"`
	AllowedMethods []string `json:"AllowedMethods"`
	AllowedOrigins []string `json:"AllowedOrigins"`
	ExposeHeaders  []string `json:"ExposeHeaders"`
	MaxAgeSeconds  int      `json:"MaxAgeSeconds"`
}

// The headers a page may send and read on a bucket's answer: Range for
// video seeking, the rest for players and canvases (README: bucket-side
// setup, as e2e/browser proved).
var (
	corsAllowHeaders  = []string{"Range"}
	corsExposeHeaders = []string{"Content-Range", "Content-Length", "Accept-Ranges", "ETag"}
	corsMethods       = []string{"GET", "HEAD"}
)

const corsMaxAge = 3600

// s3Resources returns the object ARN pattern under the prefix and the
// bucket ARN: arn:PARTITION:s3:::BUCKET/PREFIX*, the whole bucket only
// when the prefix is empty.
func s3Resources(src Source) (objects, bucket string) {
	part := Partition(src.Region)
	bucket = "arn:" + part + ":s3:::" + src.Bucket
	return bucket + "/" + src.Prefix + "*", bucket
}

// readStatements are the grants the edge needs, for the permission and
// the bucket policy: GetObject under the prefix, ListBucket confined to it
// when the source syncs, and (permission policy only: a bucket policy
// cannot name a KMS key) kms:Decrypt on the source's key.
func readStatements(src Source, principal *awsPrincipal, withKMS bool) []iamStatement {
	objects, bucket := s3Resources(src)
	st := []iamStatement{{Sid: "EdgeRead", Effect: "Allow", Principal: principal, Action: "s3:GetObject", Resource: objects}}
	if src.Sync {
		list := iamStatement{Sid: "EdgeList", Effect: "Allow", Principal: principal, Action: "s3:ListBucket", Resource: bucket}
		if src.Prefix != "" {
			list.Condition = map[string]map[string]any{"StringLike": {"s3:prefix": []string{src.Prefix + "*"}}}
		}
		st = append(st, list)
	}
	if withKMS && src.KMSKeyARN != "" {
		st = append(st, iamStatement{Sid: "EdgeDecrypt", Effect: "Allow", Action: "kms:Decrypt", Resource: src.KMSKeyARN})
	}
	return st
}

func awsDocuments(ctx context.Context, src Source, opts PolicyOptions) ([]Document, error) {
	principal, err := awsPlatformPrincipal(ctx, opts, Partition(src.Region))
	if err != nil {
		return nil, err
	}
	objects, _ := s3Resources(src)
	var docs []Document
	where := "the whole bucket"
	if src.Prefix != "" {
		where = "only objects under " + src.Prefix
	}
	if src.Credentials.Type == "assume_role" {
		extID, suggested := src.Credentials.ExternalID, false
		if extID == "" {
			if extID, err = newExternalID(opts.Rand); err != nil {
				return nil, err
			}
			suggested = true
		}
		var b strings.Builder
		fmt.Fprintf(&b, "In the customer's AWS account (IAM console > Roles > Create role > Custom trust policy), paste this trust policy. It lets only the platform's principal %s assume the role, and only with the external ID.\n", principal)
		if suggested {
			fmt.Fprintf(&b, "No external ID is configured: %s is a fresh random one, suggested. Set it as credentials.external_id of source %s in the edge's config or connection, and give it to no one else.\n", extID, src.Name)
		}
		fmt.Fprintf(&b, "Then attach the %s document to the role, and set credentials.role_arn of source %s to the role's ARN.", KindAWSPermission, src.Name)
		docs = append(docs, Document{
			Kind: KindAWSTrust, Title: "Trust policy of the role the edge assumes", Steps: b.String(),
			JSON: iamPolicy{Version: "2012-10-17", Statement: []iamStatement{{
				Sid: "EdgeAssume", Effect: "Allow", Principal: &awsPrincipal{AWS: principal}, Action: "sts:AssumeRole",
				Condition: map[string]map[string]any{"StringEquals": {"sts:ExternalId": extID}},
			}}},
		})
	}
	var perm strings.Builder
	if src.Credentials.Type == "assume_role" {
		fmt.Fprintf(&perm, "Attach this policy to the role of the %s document (IAM console > Roles > the role > Add permissions > Create inline policy > JSON).", KindAWSTrust)
	} else {
		fmt.Fprintf(&perm, "Attach this policy to the identity whose credentials the edge signs with for source %s (IAM console > Users or Roles > Add permissions > Create inline policy > JSON).", src.Name)
	}
	fmt.Fprintf(&perm, " It grants s3:GetObject on %s (%s)", objects, where)
	if src.Sync {
		fmt.Fprintf(&perm, ", s3:ListBucket %s (the source syncs)", listWhere(src))
	}
	if src.KMSKeyARN != "" {
		perm.WriteString(", and kms:Decrypt on the bucket's SSE-KMS key; the key's own key policy must allow the account's IAM policies (the default key policy does)")
	}
	perm.WriteString(". Nothing else: no write, no other bucket.")
	docs = append(docs, Document{
		Kind: KindAWSPermission, Title: "Permission policy: read access under the prefix", Steps: perm.String(),
		JSON: iamPolicy{Version: "2012-10-17", Statement: readStatements(src, nil, true)},
	})
	var bp strings.Builder
	fmt.Fprintf(&bp, "The cross-account alternative to a role: in the customer's S3 console (the bucket %s > Permissions > Bucket policy > Edit), paste this policy, merging its statements into an existing policy. It grants the platform's principal %s the same read access; the platform's own account must allow that principal s3:GetObject on %s too.", src.Bucket, principal, objects)
	if src.KMSKeyARN != "" {
		fmt.Fprintf(&bp, " The bucket is encrypted with SSE-KMS: a bucket policy cannot grant the key, so also add to the key policy of %s (KMS console > the key > Key policy > Edit) a statement allowing %s the action kms:Decrypt on resource \"*\".", src.KMSKeyARN, principal)
	}
	docs = append(docs, Document{
		Kind: KindAWSBucket, Title: "Bucket policy: read access for the platform's principal", Steps: bp.String(),
		JSON: iamPolicy{Version: "2012-10-17", Statement: readStatements(src, &awsPrincipal{AWS: principal}, false)},
	})
	if src.mode() == ModeRedirect {
		origins, dropped := corsOrigins(src.Origins, true)
		rule := s3CORSRule{AllowedHeaders: corsAllowHeaders, AllowedMethods: corsMethods, AllowedOrigins: origins, ExposeHeaders: corsExposeHeaders, MaxAgeSeconds: corsMaxAge}
		var b strings.Builder
		fmt.Fprintf(&b, "In the customer's S3 console (the bucket %s > Permissions > Cross-origin resource sharing (CORS) > Edit), paste this rule; with the CLI: aws s3api put-bucket-cors --bucket %s --cors-configuration '{\"CORSRules\": RULES}' with RULES this document.\n", src.Bucket, src.Bucket)
		b.WriteString(corsWhy)
		writeDropped(&b, dropped)
		docs = append(docs, Document{Kind: KindAWSCORS, Title: "Bucket CORS for redirect mode", Steps: b.String(), JSON: []s3CORSRule{rule}})
	}
	return docs, nil
}

// corsWhy explains the origins of every CORS document: what e2e/browser
// proved against Chromium and versitygw (README: AWS S3: CORS).
const corsWhy = `"null" is the origin browsers send after the edge's cross-origin redirect when the edge has an origin of its own; the page origins serve an edge routed under the page's origin. "*" is left out on purpose: browsers refuse it for crossorigin="use-credentials". Plain <img> and <video> need no CORS; pages that read pixels (crossorigin) do.`

func writeDropped(b *strings.Builder, dropped []string) {
	if len(dropped) > 0 {
		fmt.Fprintf(b, "\nLeft out, as this store cannot match them: %s; list each concrete page origin instead.", strings.Join(dropped, ", "))
	}
}

// corsOrigins is "null" and the page origins: patterns with one "*" kept
// when the store matches them (S3 does), others dropped, and a bare "*"
// never (use-credentials refuses it).
func corsOrigins(patterns []string, wildcards bool) (origins, dropped []string) {
	origins = []string{"null"}
	for _, o := range patterns {
		n := strings.Count(o, "*")
		switch {
		case o == "*" || o == "null":
			continue
		case n == 0, n == 1 && wildcards:
			origins = append(origins, o)
		default:
			dropped = append(dropped, o)
		}
	}
	return origins, dropped
}

// awsPlatformPrincipal is the principal customers trust: the configured
// one, or the caller identity of the default chain. A 12-digit account id
// becomes the account's root principal in the bucket's partition (an
// account of aws-cn is no principal of aws); an assumed-role session
// becomes its role (trust policies name roles, not sessions).
func awsPlatformPrincipal(ctx context.Context, opts PolicyOptions, partition string) (string, error) {
	p := opts.Platform.AWSPrincipal
	if p == "" {
		get := opts.CallerIdentity
		if get == nil {
			get = callerIdentity
		}
		var err error
		if p, err = get(ctx); err != nil {
			return "", fmt.Errorf("platform.aws_principal is not set and sts:GetCallerIdentity of the default credential chain failed (set platform.aws_principal): %w", err)
		}
	}
	return normalizePrincipal(p, partition), nil
}

func normalizePrincipal(p, partition string) string {
	if len(p) == 12 && strings.Trim(p, "0123456789") == "" {
		return "arn:" + partition + ":iam::" + p + ":root"
	}
	// arn:PART:sts::ACCOUNT:assumed-role/ROLE/SESSION -> arn:PART:iam::ACCOUNT:role/ROLE
	parts := strings.SplitN(p, ":", 6)
	if len(parts) == 6 && parts[2] == "sts" {
		if rest, ok := strings.CutPrefix(parts[5], "assumed-role/"); ok {
			role, _, _ := strings.Cut(rest, "/")
			return "arn:" + parts[1] + ":iam::" + parts[4] + ":role/" + role
		}
	}
	return p
}

// callerIdentity asks STS who the default credential chain is.
func callerIdentity(ctx context.Context) (string, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return "", err
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.Arn), nil
}

// newExternalID is a fresh random external ID: 32 hex digits (128 bits),
// within STS's 2-1224 characters of [\w+=,.@:/-].
func newExternalID(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, 16)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("external id: %w", err)
	}
	return "edge-" + hex.EncodeToString(b), nil
}

// gcsBinding is one IAM binding of a bucket's policy.
type gcsBinding struct {
	Role      string        `json:"role"`
	Members   []string      `json:"members"`
	Condition *gcsCondition `json:"condition,omitempty"`
}

type gcsCondition struct {
	Title       string `json:"title"`
	Description string `json:"description"`
	Expression  string `json:"expression"`
}

type gcsCORSRule struct {
	Origin         []string `json:"origin"`
	Method         []string `json:"method"`
	ResponseHeader []string `json:"responseHeader"`
	MaxAgeSeconds  int      `json:"maxAgeSeconds"`
}

func gcsDocuments(src Source, opts PolicyOptions) ([]Document, error) {
	sa := opts.Platform.GCSServiceAccount
	if sa == "" {
		var err error
		if sa, err = gcsClientEmail(src.Credentials); err != nil {
			return nil, err
		}
	}
	member := "serviceAccount:" + sa
	b := gcsBinding{Role: "roles/storage.objectViewer", Members: []string{member}}
	var cond string
	if src.Prefix != "" {
		cond = fmt.Sprintf(`resource.name.startsWith("projects/_/buckets/%s/objects/%s")`, src.Bucket, src.Prefix)
		if src.Sync {
			// objects.list is checked on the bucket, never on a prefix.
			cond += fmt.Sprintf(` || resource.name == "projects/_/buckets/%s"`, src.Bucket)
		}
		b.Condition = &gcsCondition{Title: "edge-prefix", Description: "edge: read under " + src.Prefix, Expression: cond}
	}
	var s strings.Builder
	fmt.Fprintf(&s, "In the customer's project, grant the platform's service account %s read access on the bucket %s", sa, src.Bucket)
	if src.Prefix != "" {
		fmt.Fprintf(&s, ", confined to objects under %s by an IAM condition (conditions need uniform bucket-level access)", src.Prefix)
	}
	fmt.Fprintf(&s, ":\ngcloud storage buckets add-iam-policy-binding gs://%s --member=%s --role=roles/storage.objectViewer", src.Bucket, member)
	if cond != "" {
		fmt.Fprintf(&s, " --condition='title=edge-prefix,expression=%s'", cond)
	}
	s.WriteString("\nThe JSON is the same binding as it shows in the bucket's IAM policy (gcloud storage buckets get-iam-policy); merge it, never replace the whole policy with it.")
	if src.Sync && src.Prefix != "" {
		s.WriteString(" The source syncs: GCS checks listing on the bucket, not on a prefix, so the condition also admits the bucket itself, which lets the platform list object names of the whole bucket (it reads only under the prefix).")
	}
	docs := []Document{{Kind: KindGCSIAM, Title: "IAM binding: read access under the prefix", Steps: s.String(),
		JSON: map[string]any{"version": 3, "bindings": []gcsBinding{b}}}}
	if src.mode() == ModeRedirect {
		origins, dropped := corsOrigins(src.Origins, false)
		var c strings.Builder
		fmt.Fprintf(&c, "Save this document as cors.json and run: gcloud storage buckets update gs://%s --cors-file=cors.json\n", src.Bucket)
		c.WriteString(corsWhy)
		writeDropped(&c, dropped)
		docs = append(docs, Document{Kind: KindGCSCORS, Title: "Bucket CORS for redirect mode (cors.json)", Steps: c.String(),
			JSON: []gcsCORSRule{{Origin: origins, Method: corsMethods, ResponseHeader: append(append([]string{}, corsExposeHeaders...), "Content-Type"), MaxAgeSeconds: corsMaxAge}}})
	}
	return docs, nil
}

// gcsClientEmail reads only client_email from the source's service
// account key.
func gcsClientEmail(c signer.Credentials) (string, error) {
	const fix = "platform.gcs_service_account is not set"
	var data []byte
	switch {
	case c.KeyJSON != "":
		data = []byte(c.KeyJSON)
	case c.KeyFile != "":
		var err error
		if data, err = os.ReadFile(c.KeyFile); err != nil {
			// The cause only: the path is the operator's value (and the
			// admin route answers this text to its caller).
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return "", fmt.Errorf("%s and credentials.key_file cannot be read: %w", fix, err)
		}
	default:
		return "", errors.New(fix + " and the source has no service account key to take client_email from (set platform.gcs_service_account)")
	}
	var k struct {
		ClientEmail string `json:"client_email"`
	}
	if json.Unmarshal(data, &k) != nil || k.ClientEmail == "" {
		return "", errors.New(fix + " and the source's key has no client_email (set platform.gcs_service_account)")
	}
	return k.ClientEmail, nil
}

// Azure built-in role definition ids (Azure docs: "Azure built-in roles").
const (
	azureBlobDataReader = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
	azureBlobDelegator  = "db58b8e5-c6ad-4a2a-8342-4190687cbf4a"
)

type azureAssignment struct {
	Role             string `json:"role"`
	RoleDefinitionID string `json:"roleDefinitionId"`
	PrincipalID      string `json:"principalId"`
	PrincipalType    string `json:"principalType"`
	Scope            string `json:"scope"`
	Condition        string `json:"condition,omitempty"`
	ConditionVersion string `json:"conditionVersion,omitempty"`
}

type azureCORSRule struct {
	AllowedOrigins  []string `json:"allowedOrigins"`
	AllowedMethods  []string `json:"allowedMethods"`
	AllowedHeaders  []string `json:"allowedHeaders"`
	ExposedHeaders  []string `json:"exposedHeaders"`
	MaxAgeInSeconds int      `json:"maxAgeInSeconds"`
}

func azureDocuments(src Source, opts PolicyOptions) []Document {
	principal := opts.Platform.AzurePrincipalID
	if principal == "" {
		principal = "PRINCIPAL_OBJECT_ID"
	}
	account := "/subscriptions/SUBSCRIPTION_ID/resourceGroups/RESOURCE_GROUP/providers/Microsoft.Storage/storageAccounts/" + src.Account
	container := account + "/blobServices/default/containers/" + src.Bucket
	reader := azureAssignment{Role: "Storage Blob Data Reader", RoleDefinitionID: azureBlobDataReader, PrincipalID: principal, PrincipalType: "ServicePrincipal", Scope: container}
	if src.Prefix != "" {
		// Azure ABAC: reads are allowed only for blob paths under the
		// prefix. Listing is the same read action (sub-operation
		// Blob.List) and has no path, so this condition refuses it: right
		// for a source that does not sync. One that syncs lists with the
		// prefix, which the second clause confines (Azure's "read or list
		// blobs in named paths" example).
		const read = "ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'}"
		if src.Sync {
			reader.Condition = fmt.Sprintf("((!(%s AND NOT SubOperationMatches{'Blob.List'})) OR (@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] StringStartsWith '%s')) AND ((!(%s AND SubOperationMatches{'Blob.List'})) OR (@Request[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:prefix] StringStartsWith '%s'))", read, src.Prefix, read, src.Prefix)
		} else {
			reader.Condition = fmt.Sprintf("((!(%s)) OR (@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] StringStartsWith '%s'))", read, src.Prefix)
		}
		reader.ConditionVersion = "2.0"
	}
	assignments := []azureAssignment{reader}
	var s strings.Builder
	if src.Credentials.Type == "shared_key" {
		fmt.Fprintf(&s, "Source %s signs with the account key, which can do anything in the account; no role is needed for it. Prefer an Entra ID identity for the edge (credentials.type: default): then assign these roles.\n", src.Name)
	}
	fmt.Fprintf(&s, "Assign the platform's identity (object id %s) Storage Blob Data Reader on the container %s", principal, src.Bucket)
	if src.Prefix != "" {
		fmt.Fprintf(&s, ", with a condition confining reads to blobs under %s", src.Prefix)
		if src.Sync {
			s.WriteString(" and listing to that prefix (the source syncs)")
		}
	}
	s.WriteString(", and Storage Blob Delegator on the storage account, which lets it request the user delegation key its SAS are signed with:\n")
	fmt.Fprintf(&s, "az role assignment create --assignee-object-id %s --assignee-principal-type ServicePrincipal --role \"Storage Blob Data Reader\" --scope %s", principal, container)
	if reader.Condition != "" {
		fmt.Fprintf(&s, " --condition-version 2.0 --condition \"%s\"", reader.Condition)
	}
	fmt.Fprintf(&s, "\naz role assignment create --assignee-object-id %s --assignee-principal-type ServicePrincipal --role \"Storage Blob Delegator\" --scope %s\n", principal, account)
	s.WriteString("Replace SUBSCRIPTION_ID and RESOURCE_GROUP with the storage account's")
	if opts.Platform.AzurePrincipalID == "" {
		s.WriteString(", and PRINCIPAL_OBJECT_ID with the edge's managed identity (set platform.azure_principal_id to have it filled in)")
	}
	s.WriteString(".")
	assignments = append(assignments, azureAssignment{Role: "Storage Blob Delegator", RoleDefinitionID: azureBlobDelegator, PrincipalID: principal, PrincipalType: "ServicePrincipal", Scope: account})
	docs := []Document{{Kind: KindAzureRoles, Title: "Role assignments for the platform's identity", Steps: s.String(),
		JSON: map[string]any{"roleAssignments": assignments}}}
	if src.mode() == ModeRedirect {
		origins, dropped := corsOrigins(src.Origins, false)
		rule := azureCORSRule{AllowedOrigins: origins, AllowedMethods: []string{"GET", "HEAD", "OPTIONS"}, AllowedHeaders: []string{"range"},
			ExposedHeaders: []string{"content-range", "content-length", "accept-ranges", "etag", "content-type"}, MaxAgeInSeconds: corsMaxAge}
		var c strings.Builder
		fmt.Fprintf(&c, "Azure sets CORS for the whole blob service of the account %s, not per container. Run:\naz storage cors add --account-name %s --services b --methods GET HEAD OPTIONS --origins %s --allowed-headers range --exposed-headers content-range,content-length,accept-ranges,etag,content-type --max-age %d\n",
			src.Account, src.Account, strings.Join(origins, " "), corsMaxAge)
		c.WriteString("or add the JSON rule to the account's blob service properties (portal: the storage account > Resource sharing (CORS) > Blob service; ARM: properties.cors.corsRules).\n")
		c.WriteString(corsWhy)
		writeDropped(&c, dropped)
		docs = append(docs, Document{Kind: KindAzureCORS, Title: "Blob service CORS for redirect mode", Steps: c.String(), JSON: rule})
	}
	return docs
}

func listWhere(src Source) string {
	if src.Prefix == "" {
		return "of the whole bucket"
	}
	return "confined to the prefix " + src.Prefix + " by an s3:prefix condition"
}
