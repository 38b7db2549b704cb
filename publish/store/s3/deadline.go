package s3store

import (
	"context"
	"crypto/tls"
	"net/http/httptrace"

	"github.com/aws/smithy-go/middleware"
)

// writeDeadline is a finalize-step middleware that gives the connection each request
// attempt is written on a write deadline: the request context's deadline, or none.
// A request whose deadline has passed is then not put on the wire, nor the rest of
// one whose write was under way: Go checks a connection's deadline before each write.
// Context cancellation alone leaves a window: in a process frozen (SIGSTOP, a paused
// VM) while it writes a request, then run again past the deadline, the goroutine that
// writes the request can go on before the one that watches the context closes the
// connection. publish fences every write to the live tree with a deadline at the end
// of its lease (lock.fenced in package publish); through that window, a publish whose
// lease was broken overwrote what the process that broke it had written.
var writeDeadline = middleware.FinalizeMiddlewareFunc("stumpWriteDeadline",
	func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		deadline, _ := ctx.Deadline() // zero: none (and clears one an earlier request left)
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) {
				if tc, ok := info.Conn.(*tls.Conn); ok && tc.ConnectionState().NegotiatedProtocol == "h2" {
					// An HTTP/2 connection carries many requests at once: one's
					// deadline would cut the others. (S3 itself speaks HTTP/1.1;
					// some compatible servers answer HTTP/2, unfenced on the wire.)
					return
				}
				_ = info.Conn.SetWriteDeadline(deadline)
			},
		})
		return next.HandleFinalize(ctx, in)
	})

// addWriteDeadline installs writeDeadline after every other finalize step (retries
// included), so that it applies to each attempt.
func addWriteDeadline(stack *middleware.Stack) error {
	return stack.Finalize.Add(writeDeadline, middleware.After)
}
