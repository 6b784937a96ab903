package nn

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// BackendFactory opens a backend on a device ("cpu", "cuda", "cuda:1").
type BackendFactory func(device string) (Backend, error)

var backends = struct {
	sync.RWMutex
	m map[string]BackendFactory
}{m: map[string]BackendFactory{}}

// RegisterBackend makes a backend available by name. It is called from the
// backend package's init and panics on an empty or duplicate name.
func RegisterBackend(name string, f BackendFactory) {
	backends.Lock()
	defer backends.Unlock()
	if name == "" || f == nil {
		panic("nn: RegisterBackend with empty name or nil factory")
	}
	if _, dup := backends.m[name]; dup {
		panic("nn: RegisterBackend called twice for " + name)
	}
	backends.m[name] = f
}

// Backends lists registered backend names, sorted.
func Backends() []string {
	backends.RLock()
	defer backends.RUnlock()
	names := make([]string, 0, len(backends.m))
	for n := range backends.m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// OpenBackend opens the named backend on device.
func OpenBackend(name, device string) (Backend, error) {
	backends.RLock()
	f, ok := backends.m[name]
	backends.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown backend %q (available: %s)", name, strings.Join(Backends(), ", "))
	}
	return f(device)
}
