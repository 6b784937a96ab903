package harness

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// registry is a database/sql-style name → factory table.
type registry[F any] struct {
	kind string
	mu   sync.RWMutex
	m    map[string]entry[F]
}

type entry[F any] struct {
	factory F
	desc    string
}

func (r *registry[F]) register(name, desc string, f F, isNil bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if name == "" {
		panic("harness: Register" + r.kind + " with empty name")
	}
	if isNil {
		panic("harness: Register" + r.kind + " " + name + " with nil factory")
	}
	if _, dup := r.m[name]; dup {
		panic("harness: Register" + r.kind + " called twice for " + name)
	}
	if r.m == nil {
		r.m = map[string]entry[F]{}
	}
	r.m[name] = entry[F]{f, desc}
}

func (r *registry[F]) lookup(name string) (F, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.m[name]
	if !ok {
		var zero F
		return zero, fmt.Errorf("unknown %s %q (available: %s)", strings.ToLower(r.kind), name, strings.Join(r.namesLocked(), ", "))
	}
	return e.factory, nil
}

func (r *registry[F]) namesLocked() []string {
	names := make([]string, 0, len(r.m))
	for n := range r.m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (r *registry[F]) list() []Registered {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []Registered
	for _, n := range r.namesLocked() {
		out = append(out, Registered{Name: n, Description: r.m[n].desc})
	}
	return out
}

// Registered is a registry entry as listed by `arbench list`.
type Registered struct {
	Name        string
	Description string
}

var (
	models = &registry[Factory]{kind: "Model"}
	tasks  = &registry[TaskFactory]{kind: "Task"}
)

// RegisterModel makes a model family available by name. It is called from a
// plugin's init and panics if name is empty, f is nil or name is taken.
func RegisterModel(name, description string, f Factory) {
	models.register(name, description, f, f == nil)
}

// RegisterTask makes a task family available by name ("text", "synthetic", ...).
func RegisterTask(name, description string, f TaskFactory) {
	tasks.register(name, description, f, f == nil)
}

// NewModel returns a fresh instance of the named model family.
func NewModel(name string) (Model, error) {
	f, err := models.lookup(name)
	if err != nil {
		return nil, err
	}
	return f(), nil
}

// NewTask returns a fresh instance of a task given its full name
// ("text/jargon"): the family is the part before the first slash.
func NewTask(fullName string) (Task, string, error) {
	family, variant, _ := strings.Cut(fullName, "/")
	f, err := tasks.lookup(family)
	if err != nil {
		return nil, "", err
	}
	return f(), variant, nil
}

// Models lists registered model families, sorted by name.
func Models() []Registered { return models.list() }

// Tasks lists registered task families, sorted by name.
func Tasks() []Registered { return tasks.list() }
