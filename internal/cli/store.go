package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/stump-dev/stump/publish"
	"github.com/stump-dev/stump/publish/store"
	"github.com/stump-dev/stump/publish/store/file"
	s3store "github.com/stump-dev/stump/publish/store/s3"
)

// openStore opens a parsed target. Credentials for S3 come only from the environment or
// the AWS default chain, and never appear in messages.
func openStore(ctx context.Context, t publish.Target, log *slog.Logger) (store.Store, error) {
	switch t.Scheme {
	case "file":
		if t.Embedded {
			if err := os.MkdirAll(filepath.Dir(t.Dir), 0o755); err != nil {
				return nil, fmt.Errorf("create the local target folder: %w", err)
			}
		}
		s, err := file.Open(t.Dir)
		if err != nil {
			return nil, err
		}
		return s, nil
	case "s3":
		s, err := s3store.Open(ctx, s3store.Config{Bucket: t.Bucket, Region: t.Region, Endpoint: t.Endpoint, PathStyle: t.PathStyle, Log: log})
		if err != nil {
			return nil, err
		}
		return store.WithPrefix(s, t.Prefix), nil
	}
	return nil, fmt.Errorf("target %s: unsupported scheme %q", t, t.Scheme)
}
