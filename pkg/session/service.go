package session

import "strings"

// IsService reports whether the service called name belongs to a kernel
// session, in whichever tenant. Every session's kernel runs as the service
// [ServicePrefix]+NAME ([Manager.Create]), and that name space is the
// sessions' alone: `solo apply` refuses a file that names such a service
// and never prunes one, since killing a kernel behind its session's back
// leaves the session starting, its tasks pending, for good.
//
// This is the one rule: decide with it, never with a string check of your
// own.
func IsService(name string) bool { return strings.HasPrefix(name, ServicePrefix) }
