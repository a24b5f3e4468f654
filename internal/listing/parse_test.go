package listing

import (
	"strings"
	"testing"
	"time"
)

// The documented answers, shortened: AWS ListObjectsV2 (with
// encoding-type=url), Google's XML API bucket listing (V1, NextMarker) and
// Azure's List Blobs.
const (
	awsPage = `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>bucket</Name>
  <Prefix>images%2F</Prefix>
  <KeyCount>2</KeyCount>
  <MaxKeys>2</MaxKeys>
  <EncodingType>url</EncodingType>
  <IsTruncated>true</IsTruncated>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <Contents>
    <Key>images%2Fa+b%2Bc%25d%C3%A9.jpg</Key>
    <LastModified>2009-10-12T17:50:30.000Z</LastModified>
    <ETag>"fba9dede5f27731c9771645a39863328"</ETag>
    <Size>434234</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
  <Contents>
    <Key>images%2Fz</Key>
    <LastModified>2009-10-12T17:50:31.000Z</LastModified>
    <ETag>"d41d8cd98f00b204e9800998ecf8427e-2"</ETag>
    <Size>0</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
</ListBucketResult>`
	gcsPage = `<?xml version='1.0' encoding='UTF-8'?>
<ListBucketResult xmlns='http://doc.s3.amazonaws.com/2006-03-01'>
  <Name>travel-maps</Name>
  <Prefix>europe/</Prefix>
  <Marker></Marker>
  <NextMarker>europe/italy.jpg</NextMarker>
  <IsTruncated>true</IsTruncated>
  <Contents>
    <Key>europe/france/paris.jpg</Key>
    <Generation>1360887697105000</Generation>
    <MetaGeneration>1</MetaGeneration>
    <LastModified>2013-02-15T00:21:37.105Z</LastModified>
    <ETag>"bf7d7c6ba8e7e4b3cb9d4b2bf9bb3a4a"</ETag>
    <Size>9251</Size>
    <Owner><ID>00b4903a97...</ID><DisplayName/></Owner>
  </Contents>
  <Contents>
    <Key>europe/italy.jpg</Key>
    <Generation>1360887759327000</Generation>
    <MetaGeneration>1</MetaGeneration>
    <LastModified>2013-02-15T00:22:39.327Z</LastModified>
    <ETag>"e5d3b6a9a4fd23fd5a3df5c1fc9a7b72"</ETag>
    <Size>15092</Size>
  </Contents>
</ListBucketResult>`
	azurePage = `<?xml version="1.0" encoding="utf-8"?>
<EnumerationResults ServiceEndpoint="https://myaccount.blob.core.windows.net/" ContainerName="mycontainer">
  <Prefix>images/</Prefix>
  <MaxResults>2</MaxResults>
  <Blobs>
    <Blob>
      <Name>images/a b.jpg</Name>
      <Properties>
        <Creation-Time>Wed, 09 Sep 2009 09:20:02 GMT</Creation-Time>
        <Last-Modified>Wed, 09 Sep 2009 09:20:02 GMT</Last-Modified>
        <Etag>0x8CBFF45D8A29A19</Etag>
        <Content-Length>100</Content-Length>
        <Content-Type>image/jpeg</Content-Type>
        <BlobType>BlockBlob</BlobType>
      </Properties>
    </Blob>
    <Blob>
      <Name Encoded="true">images%2F%EF%BF%BEx</Name>
      <Properties>
        <Last-Modified>Thu, 10 Sep 2009 09:20:02 GMT</Last-Modified>
        <Etag>"0x8CBFF45D8A29A20"</Etag>
        <Content-Length>7</Content-Length>
      </Properties>
    </Blob>
    <Blob>
      <Name>images/dir</Name>
      <Properties><ResourceType>directory</ResourceType><Content-Length>0</Content-Length></Properties>
    </Blob>
  </Blobs>
  <NextMarker>2!80!MDAwMDE2IWltYWdlcy9hIGIuanBnITAwMDAyOCE5OTk5LTEyLTMxVDIzOjU5OjU5Ljk5OTk5OTlaIQ--</NextMarker>
</EnumerationResults>`
)

func TestParsePage(t *testing.T) {
	type want struct {
		key, storageKey, etag string
		size                  int64
		modified              time.Time
	}
	tests := []struct {
		name, body, prefix string
		objs               []want
		next, err          string
	}{
		{"aws", awsPage, "images/", []want{
			{"a b+c%dé.jpg", "images/a b+c%dé.jpg", `"fba9dede5f27731c9771645a39863328"`, 434234, time.Date(2009, 10, 12, 17, 50, 30, 0, time.UTC)},
			{"z", "images/z", `"d41d8cd98f00b204e9800998ecf8427e-2"`, 0, time.Date(2009, 10, 12, 17, 50, 31, 0, time.UTC)},
		}, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=", ""},
		{"gcs", gcsPage, "europe/", []want{
			{"france/paris.jpg", "europe/france/paris.jpg", `"bf7d7c6ba8e7e4b3cb9d4b2bf9bb3a4a"`, 9251, time.Date(2013, 2, 15, 0, 21, 37, 105e6, time.UTC)},
			{"italy.jpg", "europe/italy.jpg", `"e5d3b6a9a4fd23fd5a3df5c1fc9a7b72"`, 15092, time.Date(2013, 2, 15, 0, 22, 39, 327e6, time.UTC)},
		}, "europe/italy.jpg", ""},
		{"gcs without NextMarker", strings.Replace(gcsPage, "<NextMarker>europe/italy.jpg</NextMarker>", "", 1), "europe/", nil, "europe/italy.jpg", ""},
		{"gcs last page", strings.Replace(gcsPage, "<IsTruncated>true", "<IsTruncated>false", 1), "europe/", nil, "", ""},
		{"azure", azurePage, "images/", []want{
			{"a b.jpg", "images/a b.jpg", `"0x8CBFF45D8A29A19"`, 100, time.Date(2009, 9, 9, 9, 20, 2, 0, time.UTC)},
			{"\ufffex", "images/\ufffex", `"0x8CBFF45D8A29A20"`, 7, time.Date(2009, 9, 10, 9, 20, 2, 0, time.UTC)},
		}, "2!80!MDAwMDE2IWltYWdlcy9hIGIuanBnITAwMDAyOCE5OTk5LTEyLTMxVDIzOjU5OjU5Ljk5OTk5OTlaIQ--", ""},
		{"outside the prefix", gcsPage, "europe/f", nil, "", `the store listed "europe/italy.jpg", outside the prefix "europe/f"`},
		{"not xml", "<html>", "", nil, "", "not a listing"},
		{"an error document", `<Error><Code>AccessDenied</Code></Error>`, "", nil, "", "a <Error>, not a listing"},
		{"truncated without token", `<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>`, "", nil, "", "no continuation token"},
		{"bad encoding", `<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>%zz</Key></Contents></ListBucketResult>`, "", nil, "", "bad URL encoding"},
		{"unknown encoding", `<ListBucketResult><EncodingType>base64</EncodingType></ListBucketResult>`, "", nil, "", "unknown EncodingType"},
		{"bad time", `<ListBucketResult><Contents><Key>a</Key><LastModified>yesterday</LastModified></Contents></ListBucketResult>`, "", nil, "", "does not parse"},
		{"negative size", `<ListBucketResult><Contents><Key>a</Key><Size>-1</Size></Contents></ListBucketResult>`, "", nil, "", "negative size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, next, _, err := parsePage([]byte(tt.body), tt.prefix)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if next != tt.next {
				t.Errorf("next %q, want %q", next, tt.next)
			}
			if tt.objs == nil {
				return
			}
			if len(objs) != len(tt.objs) {
				t.Fatalf("%d objects, want %d: %+v", len(objs), len(tt.objs), objs)
			}
			for i, w := range tt.objs {
				o := objs[i]
				if o.Key != w.key || o.StorageKey != w.storageKey || o.ETag != w.etag || o.Size != w.size || !o.LastModified.Equal(w.modified) {
					t.Errorf("object %d: %+v, want %+v", i, o, w)
				}
			}
		})
	}
}

func TestParsePageSkipsInvalidUTF8(t *testing.T) {
	objs, _, skipped, err := parsePage([]byte(`<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>a%FF</Key></Contents><Contents><Key>b</Key></Contents></ListBucketResult>`), "")
	if err != nil || len(objs) != 1 || objs[0].Key != "b" || skipped != 1 {
		t.Errorf("objs %+v skipped %d err %v", objs, skipped, err)
	}
}

// FuzzParsePage: whatever the store answers, no panic, and every object
// listed lies inside the prefix with its key relative to it.
func FuzzParsePage(f *testing.F) {
	for _, s := range []string{awsPage, gcsPage, azurePage, "<ListBucketResult/>"} {
		f.Add(s, "images/")
	}
	f.Fuzz(func(t *testing.T, body, prefix string) {
		objs, _, _, err := parsePage([]byte(body), prefix)
		if err != nil {
			return
		}
		for _, o := range objs {
			if o.StorageKey != prefix+o.Key || o.Size < 0 {
				t.Fatalf("object %+v outside prefix %q", o, prefix)
			}
		}
	})
}
