package signer

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
)

// containerPermList is the SAS permission string for List Blobs.
var containerPermList = (&sas.ContainerPermissions{List: true}).String()

// PresignList returns a List Blobs URL for one page, authorised by a
// container SAS that grants only list (sp=l): signed with the account key,
// or as a user delegation SAS with the cached delegation key. The SAS
// itself does not restrict the prefix (Azure has no such SAS field); the
// listing asks for prefix= and checks every name it gets back.
func (a *Azure) PresignList(ctx context.Context, r ListRequest) (string, error) {
	at := r.At
	if at.IsZero() {
		at = a.now()
	}
	at = at.UTC().Truncate(time.Second)
	v := sas.BlobSignatureValues{
		Protocol:      a.protocol,
		StartTime:     at.Add(-azureClockSkew),
		ExpiryTime:    at.Add(r.ttl()),
		Permissions:   containerPermList,
		ContainerName: a.container,
	}
	var (
		qp  sas.QueryParameters
		err error
	)
	if a.shared != nil {
		qp, err = v.SignWithSharedKey(a.shared)
	} else {
		k, kerr := a.delegationKey(ctx)
		if kerr != nil {
			return "", kerr
		}
		if v.StartTime.Before(k.start) {
			v.StartTime = k.start
		}
		if v.ExpiryTime.After(k.expiry) {
			v.ExpiryTime = k.expiry
		}
		if !v.ExpiryTime.After(at) {
			return "", fmt.Errorf("azure: delegation key expires at %s: %w", k.expiry.Format(time.RFC3339), ErrCredentials)
		}
		ud := a.signUserDelegation(k, v.StartTime, v.ExpiryTime, containerPermList, "")
		return a.listURL(r, ud), nil
	}
	if err != nil {
		return "", fmt.Errorf("azure: sign list: %w", err)
	}
	return a.listURL(r, qp.Encode()), nil
}

// listURL is the container's List Blobs URL for one page, with the SAS
// query sasQuery.
func (a *Azure) listURL(r ListRequest, sasQuery string) string {
	var b strings.Builder
	b.WriteString(strings.TrimSuffix(a.prefix, "/"))
	b.WriteString("?restype=container&comp=list&prefix=")
	b.Write(appendEscaped(nil, r.Prefix, false))
	if r.Token != "" {
		b.WriteString("&marker=")
		b.Write(appendEscaped(nil, r.Token, false))
	}
	if r.MaxKeys > 0 {
		b.WriteString("&maxresults=")
		b.WriteString(strconv.Itoa(r.MaxKeys))
	}
	b.WriteByte('&')
	b.WriteString(sasQuery)
	return b.String()
}
