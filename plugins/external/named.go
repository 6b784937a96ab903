package external

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"arbench/harness"
)

// PluginsEnv names the plugins file (default DefaultPluginsFile in the
// working directory): the external models known by name, chosen as
// ext:NAME (-model ext:torch-rnn, or name: ext:torch-rnn in an
// experiment). Each entry is a Config:
//
//	torch-rnn:
//	  command: [python3, python/examples/torch_rnn.py]
//	  plugin_config: {cell: lstm, hidden: 256}
const (
	PluginsEnv         = "ARBENCH_PLUGINS"
	DefaultPluginsFile = "arbench-plugins.yaml"
)

var _ harness.NamedConfigurer = (*Model)(nil)

var pluginName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// pluginsFile returns the plugins file's path and whether it was named
// explicitly (a missing default file is no error: no named plugins).
func pluginsFile() (string, bool) {
	if p := os.Getenv(PluginsEnv); p != "" {
		return p, true
	}
	return DefaultPluginsFile, false
}

// loadPlugins reads the plugins file: every entry decoded strictly over
// the defaults and validated, all problems at once.
func loadPlugins() (map[string]Config, string, error) {
	path, explicit := pluginsFile()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return nil, path, nil
	}
	if err != nil {
		return nil, path, fmt.Errorf("plugins file (%s): %w", PluginsEnv, err)
	}
	// Unknown fields and wrong types, with the file's own line numbers.
	strict := yaml.NewDecoder(bytes.NewReader(b))
	strict.KnownFields(true)
	var check map[string]Config
	if err := strict.Decode(&check); err != nil && !errors.Is(err, io.EOF) {
		return nil, path, fmt.Errorf("plugins file %s: %w", path, err)
	}
	var raw map[string]yaml.Node
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, path, fmt.Errorf("plugins file %s: %w", path, err)
	}
	out := map[string]Config{}
	var errs []error
	for name, node := range raw {
		if !pluginName.MatchString(name) {
			errs = append(errs, fmt.Errorf("%s:%d: %q: a plugin name uses letters, digits, '.', '_' and '-'", path, node.Line, name))
			continue
		}
		c := New().(*Model).cfg // the defaults, then the entry
		if err := node.Decode(&c); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %s: %w", path, node.Line, name, err))
			continue
		}
		for _, e := range c.Validate() {
			errs = append(errs, fmt.Errorf("%s:%d: %s: %w", path, node.Line, name, e))
		}
		out[name] = c
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	if len(errs) > 0 {
		return nil, path, errors.Join(errs...)
	}
	return out, path, nil
}

// NamedConfigs lists the plugins file's entries with their commands.
func (m *Model) NamedConfigs() ([]harness.Registered, error) {
	plugins, path, err := loadPlugins()
	if err != nil {
		return nil, err
	}
	var out []harness.Registered
	for name, c := range plugins {
		out = append(out, harness.Registered{Name: name, Description: fmt.Sprintf("external plugin: %s (%s)", strings.Join(c.Command, " "), path)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// UseNamedConfig configures the model as the plugins file's entry name.
func (m *Model) UseNamedConfig(name string) error {
	plugins, path, err := loadPlugins()
	if err != nil {
		return err
	}
	c, ok := plugins[name]
	if !ok {
		names := make([]string, 0, len(plugins))
		for n := range plugins {
			names = append(names, n)
		}
		sort.Strings(names)
		return fmt.Errorf("no external plugin %q in %s (%s; known: %s)", name, path, PluginsEnv, strings.Join(names, ", "))
	}
	m.cfg = c
	return nil
}
