package solo

import (
	"slices"
	"sync"

	"github.com/solo-rt/solo/pkg/state"
)

// keyedMutex serialises the writes about one (tenant, name) — deploy,
// kill, apply, recover, verify --fix — so that each decision ("is this
// spec new?") and its action are one step. It is the one lock of a
// service's writes; every caller that needs several keys takes them with
// lockAll, in one order, so that two such callers cannot deadlock.
type keyedMutex struct {
	mu sync.Mutex
	m  map[state.Key]*keyLock
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

// lock locks key and returns its unlock.
func (k *keyedMutex) lock(key state.Key) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[state.Key]*keyLock{}
	}
	l, ok := k.m[key]
	if !ok {
		l = &keyLock{}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}

// lockAll locks keys, in any order and with repeats, by taking each
// distinct key once in (tenant, name) order, and returns the one unlock of
// all of them.
func (k *keyedMutex) lockAll(keys []state.Key) (unlock func()) {
	keys = slices.Clone(keys)
	slices.SortFunc(keys, compareKeys)
	keys = slices.Compact(keys)
	unlocks := make([]func(), len(keys))
	for i, key := range keys {
		unlocks[i] = k.lock(key)
	}
	return func() {
		for i := len(unlocks) - 1; i >= 0; i-- {
			unlocks[i]()
		}
	}
}

func compareKeys(a, b state.Key) int {
	if a.Tenant != b.Tenant {
		if a.Tenant < b.Tenant {
			return -1
		}
		return 1
	}
	switch {
	case a.Name < b.Name:
		return -1
	case a.Name > b.Name:
		return 1
	}
	return 0
}
