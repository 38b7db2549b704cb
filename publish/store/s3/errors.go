package s3store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/stump-dev/stump/publish/store"
)

// apiError is what an SDK error tells: the S3 error code ("NoSuchKey"; for answers
// without a body, as to HEAD, the status text: "NotFound", "Forbidden"), the server's
// message, the HTTP status (0 when no answer came) and the answer's headers.
type apiError struct {
	code, msg string
	status    int
	header    http.Header
}

func describe(err error) apiError {
	var a apiError
	var ae smithy.APIError
	if errors.As(err, &ae) {
		a.code, a.msg = ae.ErrorCode(), ae.ErrorMessage()
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		a.status = re.HTTPStatusCode()
		a.header = re.Response.Header
	}
	return a
}

// detail is the server's answer in parentheses, for the end of a message.
func (a apiError) detail() string {
	var b strings.Builder
	b.WriteString("(")
	if a.status != 0 {
		fmt.Fprintf(&b, "HTTP %d", a.status)
	}
	if a.code != "" {
		if a.status != 0 {
			b.WriteString(" ")
		}
		b.WriteString(a.code)
		if a.msg != "" && a.msg != a.code {
			b.WriteString(": " + strings.TrimSpace(a.msg))
		}
	}
	b.WriteString(")")
	return b.String()
}

// credentialCodes are the answers to credentials the server does not accept.
var credentialCodes = map[string]bool{
	"InvalidAccessKeyId":    true,
	"SignatureDoesNotMatch": true,
	"InvalidToken":          true,
	"ExpiredToken":          true,
	"TokenRefreshRequired":  true,
	// versitygw's answer to an unknown access key (with 404, where AWS says 403
	// InvalidAccessKeyId).
	"XAdminUserNotFound": true,
}

// permanentCodes are the error codes retrying cannot cure, with a plain reason
// ("%s" is the server). Other 4xx answers are permanent too, except the ones in
// transientCodes and 408, 409 and 429.
var permanentCodes = map[string]string{
	"AccessDenied":              "access denied by %s",
	"Forbidden":                 "access denied by %s",
	"AllAccessDisabled":         "access denied by %s",
	"AccountProblem":            "access denied by %s (a problem with the account)",
	"NoSuchBucket":              "the bucket does not exist at %s",
	"InvalidRequest":            "%s refused the request",
	"InvalidArgument":           "%s refused the request",
	"BadDigest":                 "checksum mismatch: %s computed another SHA-256 of the bytes sent",
	"InvalidDigest":             "checksum mismatch: %s refused the checksum sent",
	"XAmzContentSHA256Mismatch": "checksum mismatch: the bytes %s received are not the bytes signed",
	"InvalidRedirectLocation":   "%s refused the redirect location (it must start with /, http:// or https://)",
	"KeyTooLongError":           "the key is too long for %s",
	"MetadataTooLarge":          "the metadata is too large for %s",
	"EntityTooLarge":            "the object is too large for %s",
	"NotImplemented":            "%s does not support this request",
	"MethodNotAllowed":          "%s does not allow this request",
	"RequestTimeTooSkewed":      "%s says this machine's clock is wrong",
	"PermanentRedirect":         "the bucket is in another region than the one configured for %s",
	"MovedPermanently":          "the bucket is in another region than the one configured for %s",
}

// transientCodes are 4xx answers that a later attempt may not get.
var transientCodes = map[string]bool{
	"RequestTimeout":             true,
	"SlowDown":                   true,
	"OperationAborted":           true,
	"ConditionalRequestConflict": true,
	"TooManyRequests":            true,
	"Throttling":                 true,
	"ThrottlingException":        true,
	"RequestThrottled":           true,
	"RequestLimitExceeded":       true,
	"BandwidthLimitExceeded":     true,
	"InternalError":              true,
	"ServiceUnavailable":         true,
}

// permanent reports whether an answer is one retrying cannot cure.
func (a apiError) permanent() bool {
	switch {
	case credentialCodes[a.code]:
		return true
	case transientCodes[a.code]:
		return false
	case permanentCodes[a.code] != "":
		return true
	case a.status == http.StatusRequestTimeout, a.status == http.StatusConflict, a.status == http.StatusTooManyRequests:
		return false
	case a.status == http.StatusNotImplemented:
		return true
	}
	return a.status >= 400 && a.status < 500
}

// isNotFound reports whether err says the object does not exist.
func isNotFound(err error) bool {
	a := describe(err)
	if credentialCodes[a.code] || a.code == "NoSuchBucket" {
		return false
	}
	return a.code == "NoSuchKey" || a.code == "NotFound" || a.status == http.StatusNotFound
}

// isPrecondition reports whether err is a failed condition of a conditional write.
func isPrecondition(err error) bool {
	a := describe(err)
	return a.code == "PreconditionFailed" || a.status == http.StatusPreconditionFailed
}

// wrap turns an SDK error of op on key into a plain sentence that wraps the store
// sentinel it stands for (none for transient errors) and the SDK's error.
func (s *Store) wrap(op, key string, err error) error {
	if err == nil {
		return nil
	}
	for _, c := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, c) {
			return store.Errorf(nil, err, "%s %s: %v", op, key, c)
		}
	}
	a := describe(err)
	switch {
	case isNotFound(err):
		return store.Errorf(store.ErrNotFound, err, "%s %s: no such object in %s", op, key, s)
	case isPrecondition(err):
		return store.Errorf(store.ErrPrecondition, err, "%s %s: the condition failed: the object exists or changed %s", op, key, a.detail())
	case credentialCodes[a.code]:
		return store.Errorf(store.ErrPermanent, err, "%s %s: %s %s", op, key, s.refused(), a.detail())
	case a.code == "NoSuchBucket":
		return store.Errorf(store.ErrPermanent, err, "%s %s: bucket %q does not exist at %s", op, key, s.bucket, s.where)
	case a.permanent():
		reason := "%s refused the request"
		if r, ok := permanentCodes[a.code]; ok {
			reason = r
		}
		return store.Errorf(store.ErrPermanent, err, "%s %s: %s %s", op, key, fmt.Sprintf(reason, s.where), a.detail())
	case a.status != 0:
		return store.Errorf(nil, err, "%s %s: %s failed %s", op, key, s.where, a.detail())
	}
	return store.Errorf(nil, err, "%s %s: cannot reach %s: %s", op, key, s.where, netReason(err))
}

// refused is the sentence for credentials the server does not accept.
func (s *Store) refused() string {
	return fmt.Sprintf("the credentials were refused by %s (check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or your AWS profile)", s.where)
}

// netReason is the network's part of an error that got no answer: "dial tcp
// 127.0.0.1:1: connect: connection refused" rather than the SDK's whole chain.
func netReason(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Error()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// checkBucket is Open's HeadBucket, its failures turned into one sentence each. An
// answer to HEAD has no body, so a 404 is asked again with a ListObjectsV2, whose
// error code tells a missing bucket from an unknown access key (versitygw answers
// that with 404 too).
func (s *Store) checkBucket(ctx context.Context, region string) error {
	_, err := s.api.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket})
	if err == nil {
		return nil
	}
	a := describe(err)
	if a.status == http.StatusNotFound {
		_, lerr := s.api.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &s.bucket, MaxKeys: aws.Int32(1)})
		if lerr == nil {
			return nil
		}
		if la := describe(lerr); la.status != 0 {
			err, a = lerr, la
		}
	}
	for _, c := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, c) {
			return store.Errorf(nil, err, "open %s: %v", s, c)
		}
	}
	switch {
	case a.status == http.StatusForbidden || credentialCodes[a.code] || a.code == "AccessDenied":
		return store.Errorf(store.ErrPermanent, err, "%s", s.refused())
	case a.status == http.StatusNotFound || a.code == "NoSuchBucket" || a.code == "NotFound":
		return store.Errorf(store.ErrNotFound, err, "bucket %q does not exist at %s", s.bucket, s.where)
	case a.status == http.StatusMovedPermanently || a.code == "PermanentRedirect" || a.code == "MovedPermanently":
		if r := a.header.Get("X-Amz-Bucket-Region"); r != "" {
			return store.Errorf(store.ErrPermanent, err,
				"bucket %q is in region %s, not %s: set region=%s in the target or AWS_REGION", s.bucket, r, region, r)
		}
		return store.Errorf(store.ErrPermanent, err, "bucket %q is not in region %s: set its region in the target or AWS_REGION", s.bucket, region)
	case a.status == 0:
		return store.Errorf(nil, err, "cannot reach %s: %s", s.where, netReason(err))
	}
	return s.wrap("open", "bucket "+s.bucket, err)
}

// deleteErrors makes one error of the per-key errors of a DeleteObjects answer for n
// keys (nil when there are none). Keys that were absent are not errors. The error is
// permanent when every key's error is.
func (s *Store) deleteErrors(errs []types.Error, n int) error {
	var lines []string
	permanent, failed := true, 0
	for _, e := range errs {
		a := apiError{code: derefString(e.Code), msg: derefString(e.Message)}
		if a.code == "NoSuchKey" {
			continue
		}
		failed++
		if !(credentialCodes[a.code] || permanentCodes[a.code] != "") {
			permanent = false
		}
		if len(lines) < 5 {
			lines = append(lines, derefString(e.Key)+" "+a.detail())
		}
	}
	if lines == nil {
		return nil
	}
	var kind error
	if permanent {
		kind = store.ErrPermanent
	}
	more := ""
	if failed > len(lines) {
		more = fmt.Sprintf(" and %d more", failed-len(lines))
	}
	return store.Errorf(kind, nil, "delete: %s refused %d of %d keys: %s%s", s.where, failed, n, strings.Join(lines, ", "), more)
}

func derefString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
