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

// NewModel returns a fresh instance of the named model family, or for
// FAMILY:CONFIG of the family's named configuration CONFIG (a
// NamedConfigurer's, e.g. ext:torch-rnn, an external plugin configured in
// its plugins file).
func NewModel(name string) (Model, error) {
	family, config, named := strings.Cut(name, ":")
	f, err := models.lookup(family)
	if err != nil {
		return nil, err
	}
	m := f()
	if !named {
		return m, nil
	}
	nc, ok := m.(NamedConfigurer)
	if !ok {
		return nil, fmt.Errorf("model %q: family %s has no named configurations (FAMILY:NAME)", name, family)
	}
	if err := nc.UseNamedConfig(config); err != nil {
		return nil, fmt.Errorf("model %q: %w", name, err)
	}
	return m, nil
}

// DefaultLabel is the label results give a model entry without one: its
// name, or for FAMILY:CONFIG the configuration's name.
func DefaultLabel(name string) string {
	if _, config, ok := strings.Cut(name, ":"); ok && config != "" {
		return config
	}
	return name
}

// NamedConfigurer is a model family with named configurations, chosen as
// FAMILY:NAME in an experiment or with -model: NamedConfigs lists them
// (for `arbench list`; an error says why they cannot be read) and
// UseNamedConfig sets the model's configuration to one of them, to which
// the experiment's config section then applies.
type NamedConfigurer interface {
	NamedConfigs() ([]Registered, error)
	UseNamedConfig(name string) error
}

// NamedConfigs lists every registered family's named configurations as
// FAMILY:NAME, with the problems of the families that could not list
// theirs.
func NamedConfigs() ([]Registered, []error) {
	var out []Registered
	var errs []error
	for _, r := range Models() {
		f, err := models.lookup(r.Name)
		if err != nil {
			continue
		}
		nc, ok := f().(NamedConfigurer)
		if !ok {
			continue
		}
		list, err := nc.NamedConfigs()
		if err != nil {
			errs = append(errs, fmt.Errorf("model %s: %w", r.Name, err))
		}
		for _, c := range list {
			out = append(out, Registered{Name: r.Name + ":" + c.Name, Description: c.Description})
		}
	}
	return out, errs
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
