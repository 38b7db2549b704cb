package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/stump-dev/stump/publish/store"
)

// fake is the S3 API in memory, as far as the unit tests need: every call fails with
// err when it is set (ListObjectsV2 with listErr, when that is set).
type fake struct {
	mu      sync.Mutex
	err     error
	listErr error
	// keys lists (pages of ListObjectsV2, 2 keys a page).
	keys []string
	// deleteErr gives the per-key error of a deleted key ("" for none).
	deleteErr func(key string) string

	puts    []*s3.PutObjectInput
	copies  []*s3.CopyObjectInput
	deletes [][]string
}

func (f *fake) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(strings.NewReader("x")), ContentLength: aws.Int64(1),
		ETag: aws.String(`"e"`), Metadata: map[string]string{"Mixed-Case": "v"}}, nil
}

func (f *fake) HeadObject(_ context.Context, in *s3.HeadObjectInput, _ ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &s3.HeadObjectOutput{ContentLength: aws.Int64(1), ETag: aws.String(`"e"`)}, nil
}

func (f *fake) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	f.mu.Lock()
	f.puts = append(f.puts, in)
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return &s3.PutObjectOutput{ETag: aws.String(`"e"`)}, nil
}

func (f *fake) CopyObject(_ context.Context, in *s3.CopyObjectInput, _ ...func(*s3.Options)) (*s3.CopyObjectOutput, error) {
	f.mu.Lock()
	f.copies = append(f.copies, in)
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return &s3.CopyObjectOutput{}, nil
}

func (f *fake) DeleteObjects(_ context.Context, in *s3.DeleteObjectsInput, _ ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error) {
	var keys []string
	out := &s3.DeleteObjectsOutput{}
	for _, o := range in.Delete.Objects {
		keys = append(keys, *o.Key)
		if f.deleteErr != nil {
			if code := f.deleteErr(*o.Key); code != "" {
				out.Errors = append(out.Errors, types.Error{Key: o.Key, Code: aws.String(code), Message: aws.String("msg")})
			}
		}
	}
	f.mu.Lock()
	f.deletes = append(f.deletes, keys)
	f.mu.Unlock()
	if len(keys) > maxDeleteBatch {
		return nil, apiErr(400, "MalformedXML", "too many keys")
	}
	if f.err != nil {
		return nil, f.err
	}
	return out, nil
}

func (f *fake) ListObjectsV2(_ context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	if f.listErr != nil {
		return nil, f.listErr
	}
	if f.err != nil {
		return nil, f.err
	}
	var match []string
	for _, k := range f.keys {
		if strings.HasPrefix(k, aws.ToString(in.Prefix)) && k > aws.ToString(in.ContinuationToken) {
			match = append(match, k)
		}
	}
	out := &s3.ListObjectsV2Output{}
	for i, k := range match {
		if i == 2 {
			out.IsTruncated = aws.Bool(true)
			out.NextContinuationToken = aws.String(match[1])
			break
		}
		out.Contents = append(out.Contents, types.Object{Key: aws.String(k), Size: aws.Int64(int64(len(k))), ETag: aws.String(`"e"`)})
	}
	return out, nil
}

func (f *fake) HeadBucket(_ context.Context, in *s3.HeadBucketInput, _ ...func(*s3.Options)) (*s3.HeadBucketOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &s3.HeadBucketOutput{}, nil
}

// apiErr is an error as the SDK returns it for an S3 answer.
func apiErr(status int, code, msg string, header ...string) error {
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return &smithy.OperationError{ServiceID: "S3", OperationName: "Op", Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status, Header: h}},
			Err:      &smithy.GenericAPIError{Code: code, Message: msg},
		},
		RequestID: "REQ",
	}}
}

// netErr is an error as the SDK returns it when no answer came.
func netErr() error {
	return &smithy.OperationError{ServiceID: "S3", OperationName: "Op", Err: &smithyhttp.RequestSendError{
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")},
	}}
}

func fakeStore(f *fake) *Store { return newStore(f, "b", "http://s3.test") }

// kind names the store sentinel err wraps.
func kind(err error) string {
	var kinds []string
	for _, k := range []struct {
		name string
		err  error
	}{{"notfound", store.ErrNotFound}, {"precondition", store.ErrPrecondition}, {"permanent", store.ErrPermanent}} {
		if errors.Is(err, k.err) {
			kinds = append(kinds, k.name)
		}
	}
	if err == nil {
		return "nil"
	}
	if kinds == nil {
		return "transient"
	}
	return strings.Join(kinds, "+")
}

func TestErrorMapping(t *testing.T) {
	ctx := context.Background()
	get := func(s *Store) error { _, _, err := s.Get(ctx, "k"); return err }
	head := func(s *Store) error { _, err := s.Head(ctx, "k"); return err }
	put := func(opts store.PutOptions) func(*Store) error {
		return func(s *Store) error { _, err := store.PutBytes(ctx, s, "k", []byte("x"), opts); return err }
	}
	cp := func(s *Store) error { return s.Copy(ctx, "src", "dst", store.PutOptions{}) }
	list := func(s *Store) error { return s.List(ctx, "", func(store.Info) error { return nil }) }
	del := func(s *Store) error { return s.Delete(ctx, "k") }

	for _, c := range []struct {
		name string
		op   func(*Store) error
		err  error
		want string // kind
		text string // in the message
	}{
		{"412 on put", put(store.PutOptions{IfNoneMatch: true}), apiErr(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold"), "precondition", "put k: the condition failed"},
		{"412 on put, no code", put(store.PutOptions{IfMatch: `"e"`}), apiErr(412, "", ""), "precondition", ""},
		{"404 on put IfMatch", put(store.PutOptions{IfMatch: `"e"`}), apiErr(404, "NoSuchKey", "The specified key does not exist."), "precondition", "no such object to replace"},
		{"NoSuchKey on get", get, apiErr(404, "NoSuchKey", "The specified key does not exist."), "notfound", "get k: no such object in s3://b"},
		{"404 on head", head, apiErr(404, "NotFound", ""), "notfound", "head k: no such object"},
		{"NoSuchKey on copy", cp, apiErr(404, "NoSuchKey", ""), "notfound", "copy src to dst: no such object src"},
		{"NoSuchBucket", get, apiErr(404, "NoSuchBucket", "The specified bucket does not exist"), "permanent", `bucket "b" does not exist at http://s3.test`},
		{"503 SlowDown", get, apiErr(503, "SlowDown", "Please reduce your request rate."), "transient", "HTTP 503 SlowDown: Please reduce your request rate."},
		{"500 InternalError", put(store.PutOptions{}), apiErr(500, "InternalError", "We encountered an internal error."), "transient", "InternalError"},
		{"503 on head", head, apiErr(503, "ServiceUnavailable", ""), "transient", "HTTP 503"},
		{"429", list, apiErr(429, "TooManyRequests", ""), "transient", ""},
		{"409 conflict", put(store.PutOptions{IfNoneMatch: true}), apiErr(409, "ConditionalRequestConflict", ""), "transient", ""},
		{"400 RequestTimeout", put(store.PutOptions{}), apiErr(400, "RequestTimeout", ""), "transient", ""},
		{"connection refused", get, netErr(), "transient", "get k: cannot reach http://s3.test: dial tcp: connect: connection refused"},
		{"canceled", get, &smithy.OperationError{Err: &smithy.CanceledError{Err: context.Canceled}}, "transient", "get k: context canceled"},
		{"AccessDenied", get, apiErr(403, "AccessDenied", "Access Denied"), "permanent", "get k: access denied by http://s3.test (HTTP 403 AccessDenied: Access Denied)"},
		{"403 on head", head, apiErr(403, "Forbidden", ""), "permanent", "access denied"},
		{"InvalidAccessKeyId", del, apiErr(403, "InvalidAccessKeyId", ""), "permanent", "the credentials were refused by http://s3.test"},
		{"SignatureDoesNotMatch", list, apiErr(403, "SignatureDoesNotMatch", ""), "permanent", "the credentials were refused by http://s3.test"},
		{"XAdminUserNotFound", get, apiErr(404, "XAdminUserNotFound", ""), "permanent", "the credentials were refused"},
		{"InvalidRequest", cp, apiErr(400, "InvalidRequest", "bad"), "permanent", "refused the request"},
		{"BadDigest", put(store.PutOptions{SHA256: strings.Repeat("0", 64)}), apiErr(400, "BadDigest", ""), "permanent", "checksum mismatch"},
		{"InvalidRedirectLocation", put(store.PutOptions{}), apiErr(400, "InvalidRedirectLocation", ""), "permanent", "redirect location"},
		{"other 4xx", put(store.PutOptions{}), apiErr(400, "SomethingNew", ""), "permanent", "SomethingNew"},
		{"501", put(store.PutOptions{IfMatch: "e"}), apiErr(501, "NotImplemented", ""), "permanent", "does not support"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.op(fakeStore(&fake{err: c.err}))
			if got := kind(err); got != c.want {
				t.Errorf("error %v is %s; want %s", err, got, c.want)
			}
			if err != nil && !strings.Contains(err.Error(), c.text) {
				t.Errorf("error %q does not say %q", err, c.text)
			}
			if errors.Is(c.err, context.Canceled) && !errors.Is(err, context.Canceled) {
				t.Errorf("error %v does not wrap context.Canceled", err)
			}
			var ae smithy.APIError
			if errors.As(c.err, &ae) && !errors.As(err, &ae) {
				t.Errorf("error %v does not wrap the SDK's error", err)
			}
		})
	}
}

func TestCheckBucket(t *testing.T) {
	creds := "the credentials were refused by http://s3.test (check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or your AWS profile)"
	for _, c := range []struct {
		name       string
		head, list error
		want, kind string
	}{
		{"exists", nil, nil, "", "nil"},
		{"missing", apiErr(404, "NotFound", ""), apiErr(404, "NoSuchBucket", ""), `bucket "b" does not exist at http://s3.test`, "notfound"},
		{"unknown key, versitygw", apiErr(404, "NotFound", ""), apiErr(404, "XAdminUserNotFound", ""), creds, "permanent"},
		{"403", apiErr(403, "Forbidden", ""), nil, creds, "permanent"},
		{"other region", apiErr(301, "MovedPermanently", "", "X-Amz-Bucket-Region", "eu-west-1"), nil,
			`bucket "b" is in region eu-west-1, not us-east-1: set region=eu-west-1 in the target or AWS_REGION`, "permanent"},
		{"unreachable", netErr(), nil, "cannot reach http://s3.test: dial tcp: connect: connection refused", "transient"},
		{"500", apiErr(500, "InternalError", "oops"), nil, `open bucket b: http://s3.test failed (HTTP 500 InternalError: oops)`, "transient"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &fake{err: c.head, listErr: c.list}
			err := fakeStore(f).checkBucket(context.Background(), "us-east-1")
			if kind(err) != c.kind || (err != nil && err.Error() != c.want) {
				t.Errorf("checkBucket = %v (%s); want %q (%s)", err, kind(err), c.want, c.kind)
			}
		})
	}
}

func TestPutRequest(t *testing.T) {
	f := &fake{}
	s := fakeStore(f)
	ctx := context.Background()
	body := []byte("hello")
	// sha256("hello")
	const sum = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
	etag, err := store.PutBytes(ctx, s, "a/b", body, store.PutOptions{
		Meta: store.Meta{ContentType: "text/plain", CacheControl: "no-cache",
			Metadata: map[string]string{"Stump-Key": "v"}, RedirectLocation: "/x"},
		SHA256: sum, IfMatch: "abc",
	})
	if err != nil || etag != `"e"` {
		t.Fatalf("Put = %q, %v", etag, err)
	}
	in := f.puts[0]
	if got := aws.ToString(in.ChecksumSHA256); got != "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=" {
		t.Errorf("ChecksumSHA256 = %q", got)
	}
	if aws.ToString(in.IfMatch) != `"abc"` || in.IfNoneMatch != nil {
		t.Errorf("IfMatch = %q, IfNoneMatch = %v", aws.ToString(in.IfMatch), in.IfNoneMatch)
	}
	if aws.ToString(in.ContentType) != "text/plain" || aws.ToString(in.CacheControl) != "no-cache" ||
		aws.ToString(in.WebsiteRedirectLocation) != "/x" || in.Metadata["stump-key"] != "v" ||
		aws.ToInt64(in.ContentLength) != 5 || aws.ToString(in.Bucket) != "b" || aws.ToString(in.Key) != "a/b" {
		t.Errorf("PutObjectInput = %+v", in)
	}
	if _, err := store.PutBytes(ctx, s, "c", body, store.PutOptions{IfNoneMatch: true}); err != nil {
		t.Fatal(err)
	}
	if in := f.puts[1]; aws.ToString(in.IfNoneMatch) != "*" || in.IfMatch != nil || in.ChecksumSHA256 != nil || in.ContentType != nil || in.Metadata != nil {
		t.Errorf("PutObjectInput = %+v", in)
	}
}

func TestCopyRequest(t *testing.T) {
	f := &fake{}
	s := fakeStore(f)
	meta := store.Meta{ContentType: "text/html", Metadata: map[string]string{"K": "v"}, RedirectLocation: "/to/"}
	if err := s.Copy(context.Background(), "blobs/a b+c%?é", "x/y.html", store.PutOptions{Meta: meta}); err != nil {
		t.Fatal(err)
	}
	in := f.copies[0]
	if got, want := aws.ToString(in.CopySource), "b/blobs/a%20b%2Bc%25%3F%C3%A9"; got != want {
		t.Errorf("CopySource = %q; want %q", got, want)
	}
	if in.MetadataDirective != types.MetadataDirectiveReplace || aws.ToString(in.WebsiteRedirectLocation) != "/to/" ||
		aws.ToString(in.ContentType) != "text/html" || in.Metadata["k"] != "v" || aws.ToString(in.Key) != "x/y.html" {
		t.Errorf("CopyObjectInput = %+v", in)
	}
}

func TestGetMeta(t *testing.T) {
	rc, info, err := fakeStore(&fake{}).Get(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if info.Key != "k" || info.Size != 1 || info.ETag != `"e"` || info.Meta.Metadata["mixed-case"] != "v" {
		t.Errorf("Info = %+v", info)
	}
}

func TestDeleteBatches(t *testing.T) {
	f := &fake{}
	s := fakeStore(f)
	keys := make([]string, 2500)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%04d", i)
	}
	if err := s.Delete(context.Background(), keys...); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if len(f.deletes) != 3 || len(f.deletes[0]) != 1000 || len(f.deletes[1]) != 1000 || len(f.deletes[2]) != 500 {
		var sizes []int
		for _, d := range f.deletes {
			sizes = append(sizes, len(d))
		}
		t.Errorf("DeleteObjects batches of %v keys; want [1000 1000 500]", sizes)
	}
	if f.deletes[2][499] != "k2499" {
		t.Errorf("last key deleted %s", f.deletes[2][499])
	}
}

func TestDeletePerKeyErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		codes map[string]string
		kind  string
		text  string
	}{
		{"absent keys", map[string]string{"a": "NoSuchKey"}, "nil", ""},
		{"denied", map[string]string{"a": "AccessDenied", "c": "AccessDenied"}, "permanent",
			"delete: http://s3.test refused 2 of 3 keys: a (AccessDenied: msg), c (AccessDenied: msg)"},
		{"internal", map[string]string{"a": "AccessDenied", "b": "InternalError"}, "transient", "b (InternalError: msg)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &fake{deleteErr: func(k string) string { return c.codes[k] }}
			err := fakeStore(f).Delete(context.Background(), "a", "b", "c")
			if kind(err) != c.kind || (err != nil && !strings.Contains(err.Error(), c.text)) {
				t.Errorf("Delete = %v (%s); want %s saying %q", err, kind(err), c.kind, c.text)
			}
		})
	}
	// A failed request stops the batches.
	f := &fake{err: apiErr(503, "SlowDown", "")}
	keys := make([]string, 1500)
	for i := range keys {
		keys[i] = fmt.Sprint("k", i)
	}
	err := fakeStore(f).Delete(context.Background(), keys...)
	if kind(err) != "transient" || len(f.deletes) != 1 || !strings.Contains(err.Error(), "delete k0 and 999 more keys") {
		t.Errorf("Delete = %v after %d requests", err, len(f.deletes))
	}
}

func TestListPages(t *testing.T) {
	f := &fake{keys: []string{"a/1", "a/2", "a/3", "a/4", "a/5", "a/dir/", "a/dir/6", "b"}}
	var got []string
	err := fakeStore(f).List(context.Background(), "a/", func(i store.Info) error {
		got = append(got, i.Key)
		return nil
	})
	if err != nil || strings.Join(got, " ") != "a/1 a/2 a/3 a/4 a/5 a/dir/6" {
		t.Errorf("List = %q, %v; want a/1..a/5 without the folder marker", got, err)
	}
}
