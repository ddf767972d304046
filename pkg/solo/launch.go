package solo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"

	"github.com/solo-rt/solo/pkg/envfile"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/supervisor"
)

// launch is how a command service starts at one moment: who it runs as,
// its whole environment (its env files and secrets read now), its umask.
type launch struct {
	env   []string
	cred  *supervisor.Credential // nil: the daemon's own
	umask *uint32
}

// launchError is a problem with a spec's who and where, naming the field.
// Its message names the user, group or file, never an env file's text.
type launchError struct {
	field string
	err   error
}

func (e *launchError) Error() string { return e.err.Error() }
func (e *launchError) Unwrap() error { return e.err }

// deniedError is a spec field its tenant's policy refuses: it is a
// [*state.FieldError] and [ErrDenied] (403, not 400).
type deniedError struct{ *state.FieldError }

func (e deniedError) Unwrap() []error { return []error{e.FieldError, ErrDenied} }

// needsLaunch reports whether a command spec is resolved afresh at every
// start: it is confined, or names a user, groups, an umask or env files. A spec without
// them runs with a fixed environment built once (see childEnv).
func needsLaunch(spec state.Spec, c *confinement) bool {
	return c != nil || spec.User != "" || spec.Group != "" || len(spec.Groups) > 0 || spec.Umask != "" || len(spec.EnvFile) > 0 || len(spec.EnvSecrets) > 0
}

// resolveLaunch is the one reading of a command spec's who and where: for
// a confined service (c not nil; see isConfined), the account its tenant's
// policy gives it (see confinement.account); else the
// account of its user (or the daemon's, for a group alone), whether this
// daemon may run as it (self is the daemon's own credential: one not
// running as root runs services only as itself), its env files in order,
// its secrets from sec (the runtime's vault), and the environment they
// make (see launchEnv). checkRunnable uses it before anything is written;
// every start uses it again, so an edited env file, a rotated secret or a
// changed passwd entry applies at the next start; a secret removed, or a
// vault whose key file is gone, fails the start with its reason.
func resolveLaunch(spec state.Spec, self supervisor.Credential, sec *Secrets, c *confinement) (launch, error) {
	var l launch
	var acct *supervisor.Account
	if c != nil {
		a, err := c.account(spec, self)
		if err != nil {
			return l, err
		}
		l.cred, acct = &a.Credential, &a
	} else if spec.User != "" || spec.Group != "" || len(spec.Groups) > 0 {
		if spec.Group != "" {
			if _, err := supervisor.LookupGroup(spec.Group); err != nil {
				return l, &launchError{"group", err}
			}
		}
		name := spec.User
		if name == "" {
			name = strconv.FormatUint(uint64(self.UID), 10)
		}
		a, err := supervisor.LookupAccount(name, spec.Group, spec.Groups)
		if err != nil {
			field := "user"
			if errors.Is(err, supervisor.ErrUnknownGroup) {
				field = "groups"
			}
			return l, &launchError{field, err}
		}
		if err := mayRunAs(a, spec, self); err != nil {
			return l, err
		}
		if self.UID == 0 {
			l.cred = &a.Credential
		}
		if spec.User != "" {
			acct = &a
		}
	}
	var vars []envfile.Var
	for _, path := range spec.EnvFile {
		vs, err := envfile.ReadFile(path)
		if err != nil {
			return l, &launchError{"env_file", err}
		}
		for _, v := range vs {
			if v.Key == state.ReservedEnv {
				return l, &launchError{"env_file", fmt.Errorf("env file %s: line %d: %s is reserved by solo", path, v.Line, v.Key)}
			}
		}
		vars = append(vars, vs...)
	}
	if spec.Umask != "" {
		m, err := state.ParseUmask(spec.Umask)
		if err != nil {
			return l, &launchError{"umask", err}
		}
		l.umask = &m
	}
	var secrets [][2]string
	if len(spec.EnvSecrets) > 0 {
		vs, err := sec.values(spec)
		if err != nil {
			return l, &launchError{"env_secrets", err}
		}
		secrets = vs
	}
	l.env = launchEnv(spec.Env, acct, vars, secrets)
	return l, nil
}

// mayRunAs refuses what a daemon not running as root cannot do: run a
// service as another user, or with groups it is not in itself. Root may
// do anything.
func mayRunAs(a supervisor.Account, spec state.Spec, self supervisor.Credential) error {
	if self.UID == 0 {
		return nil
	}
	me := strconv.FormatUint(uint64(self.UID), 10)
	if u, err := user.LookupId(me); err == nil {
		me = fmt.Sprintf("%s (uid %d)", u.Username, self.UID)
	} else {
		me = "uid " + me
	}
	if a.UID != self.UID {
		return &launchError{"user", fmt.Errorf("the daemon runs as %s, not root: it can run services only as itself, not as %q; run the daemon as root to use user", me, spec.User)}
	}
	if spec.Group != "" && a.GID != self.GID {
		return &launchError{"group", fmt.Errorf("the daemon runs as %s, not root: it cannot change a service's group to %q", me, spec.Group)}
	}
	for _, g := range spec.Groups {
		id, err := supervisor.LookupGroup(g)
		if err != nil {
			return &launchError{"groups", err}
		}
		if id != self.GID && !slices.Contains(self.Groups, id) {
			return &launchError{"groups", fmt.Errorf("the daemon runs as %s, not root, and is not in group %q itself: it cannot give it to a service", me, g)}
		}
	}
	return nil
}

// checkRunnable is the one check, for Deploy and Apply, that a command
// spec can start here, before anything is written (I9): its user and
// groups exist and this daemon may use them, its env files can be read and
// parse, its dir is a directory the user may enter, and its command
// resolves, as execve would in that dir with the service's PATH (from env
// and env files, else the daemon's), to a file the user may execute. An
// error is a [*state.FieldError] naming the field. The secrets it names
// exist in sec and open. A kind spec passes.
func checkRunnable(spec state.Spec, sec *Secrets, c *confinement) error {
	if len(spec.Command) == 0 {
		return nil
	}
	bad := func(field string, err error) error {
		return &state.FieldError{Field: field, Problem: err.Error()}
	}
	var cred *supervisor.Credential // nil: the daemon's own
	pathList, ok := spec.Env["PATH"]
	if needsLaunch(spec, c) {
		// Only then: a plain spec (the 1,000 of a burst) is checked without
		// building an environment it does not need.
		l, err := resolveLaunch(spec, supervisor.Self(), sec, c)
		if err != nil {
			var le *launchError
			if errors.As(err, &le) && errors.Is(le.err, ErrDenied) {
				return deniedError{bad(le.field, le.err).(*state.FieldError)}
			}
			if errors.As(err, &le) {
				return bad(le.field, le.err)
			}
			return bad("command", err)
		}
		cred = l.cred
		for _, kv := range slices.Backward(l.env) {
			if v, found := strings.CutPrefix(kv, "PATH="); found {
				pathList, ok = v, true
				break
			}
		}
	}
	if !ok {
		pathList = os.Getenv("PATH")
	}
	if spec.Dir != "" {
		if err := supervisor.CheckDir(spec.Dir, cred); err != nil {
			return bad("dir", err)
		}
	}
	if _, err := supervisor.LookPath(spec.Command[0], spec.Dir, pathList, cred); err != nil {
		return bad("command", err)
	}
	return nil
}

// preparer is a runner's Prepare: it fills a start's who and where.
type preparer = func(*supervisor.StartOptions) error

// prepareLaunch returns the Prepare of a command spec's runner when it
// needs one (see needsLaunch): it resolves the spec at every start, a
// confined one (see isConfined) under its tenant's policy as it is then.
func (r *Runtime) prepareLaunch(spec state.Spec, confined bool) preparer {
	if !confined && !needsLaunch(spec, nil) {
		return nil
	}
	return func(o *supervisor.StartOptions) error {
		c, err := r.confinement(context.Background(), spec.Tenant, confined, true)
		if err != nil {
			return err
		}
		l, err := resolveLaunch(spec, supervisor.Self(), r.secrets, c)
		if err != nil {
			return err
		}
		o.Env, o.Credential, o.Umask = l.env, l.cred, l.umask
		return nil
	}
}

// launchEnv builds a child's environment in layers, a later one replacing
// a key of an earlier: the variables the daemon passes on (inherited),
// then HOME, USER, LOGNAME and SHELL of acct (as runuser sets them) if it
// is set, then the env files' in order, then the spec's env, then its
// secrets (a key of the spec's env is never a secret's: see Spec.Validate).
func launchEnv(spec map[string]string, acct *supervisor.Account, files []envfile.Var, secrets [][2]string) []string {
	if acct == nil && len(files) == 0 && len(secrets) == 0 {
		return childEnv(spec)
	}
	idx := map[string]int{}
	var env []string
	set := func(k, v string) {
		if i, ok := idx[k]; ok {
			env[i] = k + "=" + v
			return
		}
		idx[k] = len(env)
		env = append(env, k+"="+v)
	}
	for _, k := range inherited {
		if v, ok := os.LookupEnv(k); ok {
			set(k, v)
		}
	}
	if acct != nil {
		set("HOME", acct.Home)
		set("USER", acct.Name)
		set("LOGNAME", acct.Name)
		if acct.Shell != "" {
			set("SHELL", acct.Shell)
		}
	}
	for _, v := range files {
		set(v.Key, v.Value)
	}
	for _, k := range sortedKeys(spec) {
		set(k, spec[k])
	}
	for _, kv := range secrets {
		set(kv[0], kv[1])
	}
	return env
}
