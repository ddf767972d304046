package supervisor

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Credential is who a process runs as: set in the child, as runuser does,
// with setgroups(Groups), setgid(GID), setuid(UID), before it changes to
// its directory and execs.
type Credential struct {
	UID, GID uint32
	// Groups are the supplementary groups, GID included where it belongs.
	Groups []uint32
}

// Account is a user as a process runs as it: its [Credential] and what
// runuser sets in the environment from the passwd entry.
type Account struct {
	Credential
	Name  string // USER and LOGNAME
	Home  string // HOME
	Shell string // SHELL; empty if the passwd file does not say
}

// LookupAccount resolves a user, by name or numeric id, as runuser -u does
// with initgroups: the group is group (by name or id) if set, else the
// user's primary group; the supplementary groups are every group of
// /etc/group (or NSS) that lists the user, its primary group, and groups
// (names or ids) on top. Errors wrap [ErrUnknownUser] or
// [ErrUnknownGroup] and name the one not found.
func LookupAccount(name, group string, groups []string) (Account, error) {
	u, err := lookupUser(name)
	if err != nil {
		return Account{}, err
	}
	uid, err := parseID(u.Uid)
	if err != nil {
		return Account{}, fmt.Errorf("user %q: uid %q: %w", name, u.Uid, err)
	}
	gid, err := parseID(u.Gid)
	if err != nil {
		return Account{}, fmt.Errorf("user %q: gid %q: %w", name, u.Gid, err)
	}
	a := Account{Credential: Credential{UID: uid, GID: gid}, Name: u.Username, Home: u.HomeDir, Shell: loginShell(u.Username)}
	ids, err := u.GroupIds()
	if err != nil {
		return Account{}, fmt.Errorf("user %q: its groups: %w", name, err)
	}
	for _, s := range ids {
		if id, err := parseID(s); err == nil {
			a.Groups = append(a.Groups, id)
		}
	}
	a.Groups = append(a.Groups, gid)
	if group != "" {
		if a.GID, err = LookupGroup(group); err != nil {
			return Account{}, err
		}
		a.Groups = append(a.Groups, a.GID)
	}
	for _, g := range groups {
		id, err := LookupGroup(g)
		if err != nil {
			return Account{}, err
		}
		a.Groups = append(a.Groups, id)
	}
	slices.Sort(a.Groups)
	a.Groups = slices.Compact(a.Groups)
	return a, nil
}

func lookupUser(name string) (*user.User, error) {
	u, err := user.Lookup(name)
	if err == nil {
		return u, nil
	}
	if _, numeric := strconv.ParseUint(name, 10, 32); numeric == nil {
		if u, err := user.LookupId(name); err == nil {
			return u, nil
		}
	}
	var unknown user.UnknownUserError
	if errors.As(err, &unknown) {
		return nil, fmt.Errorf("%w %q (not in /etc/passwd or NSS)", ErrUnknownUser, name)
	}
	return nil, fmt.Errorf("user %q: %w", name, err)
}

// LookupGroup resolves a group by name or numeric id. An error wraps
// [ErrUnknownGroup] and names it.
func LookupGroup(name string) (uint32, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		if _, numeric := strconv.ParseUint(name, 10, 32); numeric == nil {
			g, err = user.LookupGroupId(name)
		}
	}
	if err != nil {
		var unknown user.UnknownGroupError
		var unknownID user.UnknownGroupIdError
		if errors.As(err, &unknown) || errors.As(err, &unknownID) {
			return 0, fmt.Errorf("%w %q (not in /etc/group or NSS)", ErrUnknownGroup, name)
		}
		return 0, fmt.Errorf("group %q: %w", name, err)
	}
	return parseID(g.Gid)
}

func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err
}

// loginShell returns the shell field of name's /etc/passwd entry (os/user
// does not expose it), "/bin/sh" when the field is empty (as login does),
// and "" when the user is not in /etc/passwd (an NSS user).
func loginShell(name string) string {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) == 7 && fields[0] == name {
			if fields[6] == "" {
				return "/bin/sh"
			}
			return fields[6]
		}
	}
	return ""
}

// Self returns the daemon's own credential (effective uid and gid, and
// its supplementary groups), the one [LookPath] and [CheckDir] use for a
// nil credential. It is read once: a daemon does not change who it is.
// Its Groups are shared; do not modify them.
func Self() Credential { return self() }

var self = sync.OnceValue(func() Credential {
	c := Credential{UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}
	gs, _ := os.Getgroups()
	for _, g := range gs {
		c.Groups = append(c.Groups, uint32(g))
	}
	return c
})

// Permission bits asked of [may].
const (
	permExec   = 1 // execute a file, or search a directory
	permSearch = permExec
)

// may reports whether cred may access a file of mode, owner and group fi
// as want (a bit of rwx: 4, 2 or 1), by its mode bits as the kernel checks
// them (no ACLs): root may search any directory and execute a file that
// has any execute bit.
func may(cred Credential, st *unix.Stat_t, want uint32) bool {
	mode := st.Mode & 0o777
	if cred.UID == 0 {
		if isDir(st) || want != permExec {
			return true
		}
		return mode&0o111 != 0
	}
	switch {
	case st.Uid == cred.UID:
		return (mode>>6)&want == want
	case st.Gid == cred.GID || slices.Contains(cred.Groups, st.Gid):
		return (mode>>3)&want == want
	}
	return mode&want == want
}

// searchable returns an error naming the first directory on the way to
// path (path's own parents, from the root) that cred may not search. Root
// may search every directory: nothing is looked at.
func searchable(path string, cred Credential) error {
	if cred.UID == 0 {
		return nil
	}
	dir := filepath.Dir(path)
	var parents []string
	for d := dir; ; d = filepath.Dir(d) {
		parents = append(parents, d)
		if d == "/" || d == "." {
			break
		}
	}
	for _, d := range slices.Backward(parents) {
		st, err := stat(d)
		if err != nil {
			return err
		}
		if !may(cred, &st, permSearch) {
			return fmt.Errorf("%w: %s may not be searched by uid %d", fs.ErrPermission, d, cred.UID)
		}
	}
	return nil
}

// CheckDir reports whether dir is a directory that cred (nil: the daemon,
// see [Self]) may change into: it exists, is a directory, and it and every
// directory above it may be searched. The error names the problem.
func CheckDir(dir string, cred *Credential) error {
	c := credOrSelf(cred)
	st, err := stat(dir)
	if err != nil {
		return err
	}
	if !isDir(&st) {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if err := searchable(dir, c); err != nil {
		return err
	}
	if !may(c, &st, permSearch) {
		return fmt.Errorf("%w: %s may not be entered by uid %d", fs.ErrPermission, dir, c.UID)
	}
	return nil
}

func credOrSelf(cred *Credential) Credential {
	if cred == nil {
		return Self()
	}
	return *cred
}

// LookPath resolves argv[0] as execve would for a process in dir with
// PATH pathList, run as cred (nil: the daemon, see [Self]): a name with a
// slash is taken as is, relative to dir when relative (dir empty: the
// daemon's working directory); a name without one is searched in
// pathList's entries in order (an empty entry is dir itself), taking the
// first regular file cred may execute. It returns the path to execute, or
// an error that says why nothing fits: not found, not a regular file, or
// not executable by cred. Permissions are checked by mode bits, not ACLs.
func LookPath(name, dir, pathList string, cred *Credential) (string, error) {
	c := credOrSelf(cred)
	if strings.Contains(name, "/") {
		path := name
		if !filepath.IsAbs(name) && dir != "" {
			path = filepath.Join(dir, name)
		}
		return path, executable(path, c)
	}
	var first error
	for _, d := range filepath.SplitList(pathList) {
		if d == "" {
			d = "."
		}
		path := filepath.Join(d, name)
		if !filepath.IsAbs(path) && dir != "" {
			path = filepath.Join(dir, path)
		}
		err := executable(path, c)
		if err == nil {
			return path, nil
		}
		if first == nil && !errors.Is(err, fs.ErrNotExist) {
			first = err // found but not usable: say so rather than "not found"
		}
	}
	if first != nil {
		return "", first
	}
	return "", fmt.Errorf("%q not found in PATH %q", name, pathList)
}

// executable returns nil if path is a regular file cred may execute.
func executable(path string, c Credential) error {
	st, err := stat(path)
	if err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if err := searchable(path, c); err != nil {
		return err
	}
	if !may(c, &st, permExec) {
		return fmt.Errorf("%w: %s is not executable by uid %d (mode %v)", fs.ErrPermission, path, c.UID, fs.FileMode(st.Mode&0o777))
	}
	return nil
}

// stat is os.Stat into a Stat_t of the caller's: a lookup of a command in
// a PATH stats several files at every start, and os.Stat allocates a
// FileInfo for each. The error is an *os.PathError, as os.Stat's.
func stat(path string) (unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return st, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return st, nil
}

func isDir(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFDIR }
