//go:build unix

package file

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"sync/atomic"
	"syscall"

	"github.com/stump-dev/stump/publish/store"
)

// TestKilledWriter: a process writing, copying and deleting is killed (SIGKILL) at
// many points, half of them between the two renames of a write (the first four with
// sidecars in attributes, the last four in files, over the same folder); after each
// kill every object the folder holds has the ETag of its
// bytes (from Get, Head and List alike), a compare-and-swap with that ETag succeeds,
// and no temporary file is listed.
func TestKilledWriter(t *testing.T) {
	if dir := os.Getenv("STUMP_FILESTORE_KILLED"); dir != "" {
		killedWriter(dir)
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	ctx := t.Context()
	for round := range 8 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKilledWriter$")
		cmd.Env = append(os.Environ(), "STUMP_FILESTORE_KILLED="+dir)
		if round >= 4 {
			// Sidecar files, over a folder written with attributes (when it was).
			cmd.Env = append(cmd.Env, "STUMP_FILESTORE_SIDEFILES=1")
		}
		if round%2 == 1 {
			cmd.Env = append(cmd.Env, fmt.Sprintf("STUMP_FILESTORE_KILL_AT=%d", 20+round*31))
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill it after a number of operations that differs from round to round.
		sc := bufio.NewScanner(out)
		for n := 0; n < 40+round*53 && sc.Scan(); n++ {
		}
		cmd.Process.Kill()
		cmd.Wait()

		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		var infos []store.Info
		if err := s.List(ctx, "", func(info store.Info) error { infos = append(infos, info); return nil }); err != nil {
			t.Fatalf("round %d: List: %v", round, err)
		}
		for _, info := range infos {
			if strings.Contains(info.Key, ".stump-tmp-") {
				t.Errorf("round %d: List shows %s", round, info.Key)
			}
			b, got, err := store.GetBytes(ctx, s, info.Key)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				t.Fatalf("round %d: Get %s: %v", round, info.Key, err)
			}
			h, err := s.Head(ctx, info.Key)
			if err != nil {
				t.Fatalf("round %d: Head %s: %v", round, info.Key, err)
			}
			if !strings.HasPrefix(got.ETag, fmt.Sprintf(`"%x-`, sha256.Sum256(b))) || h.ETag != got.ETag || info.ETag != got.ETag {
				t.Errorf("round %d: %s holds %q with ETags %s (Get), %s (Head), %s (List)", round, info.Key, b, got.ETag, h.ETag, info.ETag)
			}
			if _, err := store.PutBytes(ctx, s, info.Key, b, store.PutOptions{IfMatch: got.ETag, Meta: got.Meta}); err != nil {
				t.Errorf("round %d: IfMatch %s with its ETag: %v", round, info.Key, err)
			}
		}
		s.Close()
	}
}

// killedWriter writes until it is killed, printing a line after each operation; with
// STUMP_FILESTORE_KILL_AT=n it kills itself between the renames of its n-th write.
func killedWriter(dir string) {
	var at int64
	fmt.Sscan(os.Getenv("STUMP_FILESTORE_KILL_AT"), &at)
	var writes atomic.Int64
	betweenRenames = func() {
		if writes.Add(1) == at {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
	forceSideFiles = os.Getenv("STUMP_FILESTORE_SIDEFILES") == "1"
	s, err := Open(dir)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	w := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		key := fmt.Sprintf("d%d/k%d", i%5, i%23)
		body := bytes.Repeat(fmt.Appendf(nil, "%d ", i), 1+i%700)
		var err error
		switch i % 6 {
		case 0, 1:
			_, err = store.PutBytes(ctx, s, key, body, store.PutOptions{Meta: store.Meta{ContentType: "text/plain"}})
		case 2:
			_, err = store.PutBytes(ctx, s, key, body, store.PutOptions{IfNoneMatch: true})
		case 3:
			err = s.Copy(ctx, fmt.Sprintf("d%d/k%d", (i+1)%5, (i+7)%23), key, store.PutOptions{Meta: store.Meta{ContentType: "text/html"}})
		case 4:
			var info store.Info
			if info, err = s.Head(ctx, key); err == nil {
				_, err = store.PutBytes(ctx, s, key, body, store.PutOptions{IfMatch: info.ETag})
			}
		case 5:
			err = s.Delete(ctx, key)
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrPrecondition) {
			fmt.Println("error:", err)
			os.Exit(3)
		}
		fmt.Fprintln(w, i)
		w.Flush()
	}
}
