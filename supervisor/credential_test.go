package supervisor

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeInfo is a file's mode, owner and group.
type fakeInfo struct {
	mode     fs.FileMode
	uid, gid uint32
}

func (f fakeInfo) stat() *unix.Stat_t {
	typ := uint32(unix.S_IFREG)
	if f.mode.IsDir() {
		typ = unix.S_IFDIR
	}
	return &unix.Stat_t{Mode: typ | uint32(f.mode.Perm()), Uid: f.uid, Gid: f.gid}
}

// TestMay: execute and search permission by mode bits, as the kernel
// checks them: the owner's bits for the owner (even when they deny and the
// group's allow), the group's for a member by gid or supplementary group,
// the others' otherwise; root needs one execute bit on a file, none on a
// directory.
func TestMay(t *testing.T) {
	alice := Credential{UID: 1000, GID: 1000, Groups: []uint32{1000, 4}}
	root := Credential{}
	cases := []struct {
		name string
		cred Credential
		fi   fakeInfo
		want bool
	}{
		{"owner x", alice, fakeInfo{0o700, 1000, 0}, true},
		{"owner without x, group with", alice, fakeInfo{0o070, 1000, 1000}, false},
		{"group by gid", alice, fakeInfo{0o010, 0, 1000}, true},
		{"group by supplementary", alice, fakeInfo{0o010, 0, 4}, true},
		{"group denies, other allows", alice, fakeInfo{0o001, 0, 4}, false},
		{"other", alice, fakeInfo{0o001, 0, 0}, true},
		{"nobody may", alice, fakeInfo{0o766, 0, 0}, false},
		{"root, one x bit", root, fakeInfo{0o010, 5, 5}, true},
		{"root, no x bit", root, fakeInfo{0o666, 0, 0}, false},
		{"root, a closed directory", root, fakeInfo{fs.ModeDir, 5, 5}, true},
	}
	for _, tc := range cases {
		if got := may(tc.cred, tc.fi.stat(), permExec); got != tc.want {
			t.Errorf("%s: may = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestLookPath: a bare name is found in the given PATH, not the daemon's,
// skipping a match the credential may not execute; a relative path with a
// slash is the dir's.
func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, d := range []string{a, b} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path string, mode fs.FileMode) {
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(a, "prog"), 0o644) // not executable
	write(filepath.Join(b, "prog"), 0o755)
	self := Self()
	got, err := LookPath("prog", "", a+":"+b, &self)
	if err != nil || got != filepath.Join(b, "prog") {
		t.Fatalf("LookPath = %q, %v; want b/prog", got, err)
	}
	if _, err := LookPath("prog", "", a, &self); err == nil || !strings.Contains(err.Error(), "not executable") {
		t.Fatalf("LookPath in a alone = %v, want not executable", err)
	}
	if _, err := LookPath("prog", "", "/nonexistent", &self); err == nil || !strings.Contains(err.Error(), "not found in PATH") {
		t.Fatalf("LookPath in /nonexistent = %v, want not found", err)
	}
	got, err = LookPath("./prog", b, "", &self)
	if err != nil || got != filepath.Join(b, "prog") {
		t.Fatalf("LookPath(./prog) in b = %q, %v", got, err)
	}
	if err := CheckDir(filepath.Join(b, "prog"), nil); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("CheckDir(a file) = %v", err)
	}
	if err := CheckDir(filepath.Join(dir, "nope"), nil); err == nil {
		t.Fatal("CheckDir(missing) = nil")
	}
}
