package cgroup

import "errors"

// ErrUnavailable is returned by [Manager.Create] and [Manager.Load] when the
// Manager makes no cgroups (see [Manager.Reason]).
var ErrUnavailable = errors.New("no cgroups on this host")
