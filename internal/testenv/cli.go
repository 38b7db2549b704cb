package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Helpers for tests that run the stump CLI as a subprocess.

// RepoRoot walks up from the working folder to the folder holding go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working folder")
		}
		dir = parent
	}
}

// BuildStump builds ./cmd/stump of the repository (see RepoRoot) into the file bin.
// ctx bounds the build. The error of a failed build holds the compiler's output.
func BuildStump(ctx context.Context, bin string) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/stump")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/stump: %v\n%s", err, out)
	}
	return nil
}

// CLIBaseEnv is an environment for a stump subprocess: this process's, without any
// AWS_ or STUMP_ setting, with the shared AWS files and the EC2 instance metadata turned
// off, and STUMP_USER=user. It holds no credentials: see CLIEnv.
func CLIBaseEnv(user string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "STUMP_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "AWS_CONFIG_FILE="+os.DevNull, "AWS_SHARED_CREDENTIALS_FILE="+os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true", "STUMP_USER="+user)
}

// CLIEnv is CLIBaseEnv(user) with the credentials of the test server s3 (given
// explicitly) and then extra settings (KEY=VALUE).
func CLIEnv(s3 S3Env, user string, extra ...string) []string {
	env := append(CLIBaseEnv(user), "AWS_ACCESS_KEY_ID="+s3.AccessKey, "AWS_SECRET_ACCESS_KEY="+s3.SecretKey)
	return append(env, extra...)
}
