// Package tmpfs mounts small, real filesystems for tests of Solo's fault
// handling: a full disk is a tmpfs of a few MiB that a test fills, not a
// mock of ENOSPC.
//
// # Usage
//
//	dir := tmpfs.Mount(t, 8<<20) // an 8 MiB tmpfs, unmounted at cleanup
//	tmpfs.Fill(t, dir)            // leaves it with no free block
//	...
//	tmpfs.Free(t, dir)            // gives the space back
//
// Mounting needs CAP_SYS_ADMIN (root, as on the development machines and in
// CI). Where the mount is refused, Mount skips the test with a message that
// says so; it never pretends.
//
// # Concurrency
//
// Each call works on its own mount point; the functions are safe to call
// from parallel tests.
package tmpfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// fillName is the file Fill writes and Free removes.
const fillName = ".tmpfs-fill"

// Mount mounts a tmpfs of size bytes (rounded up to pages by the kernel)
// on a fresh directory under tb.TempDir, and unmounts it at cleanup. It
// skips the test when the process may not mount.
func Mount(tb testing.TB, size int64) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	opts := fmt.Sprintf("size=%d,mode=0755", size)
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			tb.Skipf("cannot mount a tmpfs here (%v): this fault test needs CAP_SYS_ADMIN", err)
		}
		tb.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	tb.Cleanup(func() {
		// MNT_DETACH: a child that still holds a file open must not make
		// the cleanup fail; the kernel frees the mount when it closes.
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			tb.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// Fill writes a file in dir until the filesystem refuses with ENOSPC, so
// that the next write anywhere on it fails. It returns how many bytes it
// wrote.
func Fill(tb testing.TB, dir string) int64 {
	tb.Helper()
	f, err := os.OpenFile(filepath.Join(dir, fillName), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		tb.Fatalf("fill %s: %v", dir, err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	var n int64
	for {
		w, err := f.Write(buf)
		n += int64(w)
		if errors.Is(err, unix.ENOSPC) {
			break
		}
		if err != nil {
			tb.Fatalf("fill %s: %v", dir, err)
		}
	}
	// Pages at the edge: write byte by byte until nothing more fits.
	for {
		if _, err := f.Write(buf[:1]); err != nil {
			break
		}
		n++
	}
	return n
}

// Free removes what Fill wrote.
func Free(tb testing.TB, dir string) {
	tb.Helper()
	if err := os.Remove(filepath.Join(dir, fillName)); err != nil {
		tb.Fatalf("free %s: %v", dir, err)
	}
}

// Avail returns the bytes an unprivileged writer may still use on the
// filesystem holding dir.
func Avail(tb testing.TB, dir string) int64 {
	tb.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		tb.Fatalf("statfs %s: %v", dir, err)
	}
	return int64(st.Bavail) * st.Bsize
}

// Used returns the bytes taken by the files under dir (their allocated
// blocks, so a sparse file counts for what it holds).
func Used(tb testing.TB, dir string) int64 {
	tb.Helper()
	var total int64
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil // rotated away while we walked
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil
			}
			return err
		}
		total += st.Blocks * 512
		return nil
	})
	if err != nil && !errors.Is(err, io.EOF) {
		tb.Fatalf("walk %s: %v", dir, err)
	}
	return total
}
