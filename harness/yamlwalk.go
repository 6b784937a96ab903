package harness

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"math/big"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// walker decodes a YAML node tree into a Go value strictly, by the rules
// of yaml.v3 (the same yaml tags, and yaml.v3 decodes each scalar), and
// records every problem with its line, plus the line of every path.
//
// It decodes mappings itself: yaml.v3's decoder checks a mapping for
// duplicate keys by comparing every pair of keys (20 s for 1 MB of keys),
// while the walker finds them with a set in one pass and decodes only the
// keys it accepts, so decoding is linear in the document.
type walker struct {
	file  string
	errs  ConfigErrors
	lines map[string]int
	// unset holds the paths of the list elements that were not set (a
	// problem is recorded there): such an element keeps its index, as
	// the zero value, so that later messages name every entry as it is
	// written; resolve skips it.
	unset map[string]bool
	// values counts the nodes decoded, each expansion of an alias
	// included, against maxValues; expanding holds the aliases being
	// decoded, to refuse one that contains itself.
	values    int
	expanding map[*yaml.Node]bool
}

// maxValues bounds the nodes one document decodes to, counting every
// expansion of an alias, so that nested aliases ("billion laughs") cannot
// make decoding exponential. A MaxExperimentSize file has fewer nodes.
const maxValues = 1 << 20

func newWalker(file string) *walker {
	return &walker{file: file, lines: map[string]int{}, unset: map[string]bool{}, expanding: map[*yaml.Node]bool{}}
}

// parse parses data, which may hold one YAML document, and returns that
// document's root node: nil when there is none or it has a syntax error.
// A syntax error is recorded at its line, and so is a second document,
// which yaml.Unmarshal would ignore, with everything after it (a syntax
// error there included).
func (w *walker) parse(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root *yaml.Node
	for i := 0; ; i++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		switch {
		case errors.Is(err, io.EOF):
			return root
		case err != nil:
			w.syntaxError(err, i == 1)
			return root
		case i == 0 && len(doc.Content) == 1:
			root = doc.Content[0]
		case i == 1:
			w.add(doc.Line, "", "a second YAML document starts here; a file holds only one")
		}
	}
}

var yamlErrorLine = regexp.MustCompile(`^line ([0-9]+): `)

// syntaxError records err, a syntax error from yaml.v3, at its line;
// second says it is in the second document (which is not recorded).
func (w *walker) syntaxError(err error, second bool) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlErrorLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	if second {
		msg += " (in a second YAML document; a file holds only one)"
	}
	w.add(line, "", "%s", msg)
}

func (w *walker) add(line int, path, format string, args ...any) {
	w.errs = append(w.errs, &ConfigError{File: w.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// sorted returns the errors in line order (stable).
func (w *walker) sorted() ConfigErrors {
	sort.SliceStable(w.errs, func(i, j int) bool { return w.errs[i].Line < w.errs[j].Line })
	return w.errs
}

// lineOf returns the line of path, or of its nearest recorded ancestor.
func (w *walker) lineOf(path string) int {
	for {
		if l, ok := w.lines[path]; ok {
			return l
		}
		if path == "" {
			return 0
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			path = ""
		} else {
			path = path[:i]
		}
	}
}

// decodeSection decodes n into target (a pointer holding defaults) when n
// decodes without a problem; otherwise target keeps its defaults.
func (w *walker) decodeSection(n *yaml.Node, target any, path string) {
	if n.Kind == 0 { // absent
		return
	}
	pv := reflect.ValueOf(target)
	if pv.Kind() != reflect.Pointer || pv.IsNil() {
		w.add(n.Line, path, "cannot decode into %T (a plugin's Config must return a non-nil pointer)", target)
		return
	}
	scratch := reflect.New(pv.Type().Elem()).Elem()
	scratch.Set(pv.Elem())
	before := len(w.errs)
	w.decode(n, scratch, path)
	if len(w.errs) == before {
		pv.Elem().Set(scratch)
	}
}

var (
	nodeType            = reflect.TypeFor[yaml.Node]()
	unmarshalerType     = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	timeType            = reflect.TypeFor[time.Time]()
	durationType        = reflect.TypeFor[time.Duration]()
	anySliceType        = reflect.TypeFor[[]any]()
	stringAnyMapType    = reflect.TypeFor[map[string]any]()
	anyAnyMapType       = reflect.TypeFor[map[any]any]()
)

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decode decodes n into v (settable), reporting problems under path. It
// reports whether v was set, as yaml.v3 does: a mapping is set even when
// some of its fields have problems (they keep their defaults); a scalar
// with a problem, or a value of the wrong kind, is not. Unlike yaml.v3, a
// list keeps such an element at its index (see walker.unset) and refuses
// a null one (see decodeEntry).
func (w *walker) decode(n *yaml.Node, v reflect.Value, path string) bool {
	if w.values++; w.values > maxValues {
		if w.values == maxValues+1 {
			w.add(n.Line, path, "the document expands to more than %d values (nested aliases?)", maxValues)
		}
		return false
	}
	if n.Kind == yaml.AliasNode {
		return w.decodeAlias(n, v, path)
	}
	if path != "" {
		w.lines[path] = n.Line
	}
	t := v.Type()
	switch {
	case t == nodeType:
		v.Set(reflect.ValueOf(n).Elem())
		return true
	case n.ShortTag() == "!!null":
		return setNull(v)
	case isUnmarshaler(t):
		if err := n.Decode(v.Addr().Interface()); err != nil {
			w.decodeError(n, t, path, err)
			return false
		}
		return true
	}
	return w.decodeKind(n, v, path)
}

func (w *walker) decodeKind(n *yaml.Node, v reflect.Value, path string) bool {
	switch v.Kind() {
	case reflect.Pointer:
		return w.decode(n, ownPointer(v), path)
	case reflect.Interface:
		return w.decodeAny(n, v, path)
	case reflect.Struct:
		return w.decodeStruct(n, v, path)
	case reflect.Map:
		return w.decodeMap(n, v, path)
	case reflect.Slice, reflect.Array:
		return w.decodeList(n, v, path)
	}
	return w.decodeScalar(n, v, path)
}

func (w *walker) decodeAlias(n *yaml.Node, v reflect.Value, path string) bool {
	switch {
	case n.Alias == nil:
		w.add(n.Line, path, "unknown alias *%s", n.Value)
	case w.expanding[n]:
		w.add(n.Line, path, "alias *%s contains itself", n.Value)
	default:
		w.expanding[n] = true
		defer delete(w.expanding, n)
		ok := w.decode(n.Alias, v, path)
		if path != "" {
			w.lines[path] = n.Line // where the value is used
		}
		return ok
	}
	return false
}

// isUnmarshaler reports whether yaml.v3 decodes t by a method of its own
// (or, for time.Time, as a timestamp scalar).
func isUnmarshaler(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	return t == timeType || t.Implements(unmarshalerType) || pt.Implements(unmarshalerType) ||
		t.Implements(textUnmarshalerType) || pt.Implements(textUnmarshalerType)
}

// setNull applies a YAML null as yaml.v3 does: pointers, maps, slices and
// interfaces become nil; other values keep their defaults (and are not
// set).
func setNull(v reflect.Value) bool {
	if canBeNil(v.Type()) {
		v.SetZero()
		return true
	}
	return false
}

func canBeNil(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
		return true
	}
	return false
}

// decodeEntry decodes n, a list element or a map's key or value, into a
// fresh value of type t, and reports whether it was set. A null field
// keeps its default, but an entry has none: a null where t cannot be nil
// is refused (yaml.v3 drops such an element or key, and zeroes such a
// value, silently).
func (w *walker) decodeEntry(n *yaml.Node, t reflect.Type, path string) (reflect.Value, bool) {
	e := reflect.New(t).Elem()
	if n.ShortTag() == "!!null" && t != nodeType && !canBeNil(t) {
		w.lines[path] = n.Line
		w.add(n.Line, path, "expected %s, got null", describeType(t))
		return e, false
	}
	return e, w.decode(n, e, path)
}

// ownPointer points v (a pointer) at a fresh copy of its target and
// returns the copy, so that decoding never writes through a pointer that
// the defaults share.
func ownPointer(v reflect.Value) reflect.Value {
	p := reflect.New(v.Type().Elem())
	if !v.IsNil() {
		p.Elem().Set(v.Elem())
	}
	v.Set(p)
	return p.Elem()
}

// key returns the scalar key node k (through an alias), or reports why it
// cannot name a field: yaml.v3 would drop such a key silently.
func (w *walker) key(k *yaml.Node, path string) (*yaml.Node, bool) {
	if k.Kind == yaml.AliasNode && k.Alias != nil {
		k = k.Alias
	}
	switch {
	case k.Kind != yaml.ScalarNode:
		w.add(k.Line, path, "expected a scalar key, got %s", describeNode(k))
	case k.ShortTag() == "!!merge":
		w.add(k.Line, joinPath(path, k.Value), "merge keys (<<) are not supported; write the fields out")
	default:
		return k, true
	}
	return nil, false
}

func (w *walker) decodeStruct(n *yaml.Node, v reflect.Value, path string) bool {
	if n.Kind != yaml.MappingNode {
		w.add(n.Line, path, "expected a mapping, got %s", describeNode(n))
		return false
	}
	fields := yamlFields(v.Type())
	seen := map[string]int{}
	known := ""
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, ok := w.key(n.Content[i], path)
		if !ok {
			continue
		}
		p := joinPath(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			w.add(k.Line, p, "duplicate field (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		index, ok := fields[k.Value]
		if !ok {
			if known == "" {
				known = strings.Join(sortedKeys(fields), ", ")
			}
			w.add(k.Line, p, "unknown field (known: %s)", known)
			continue
		}
		w.decode(n.Content[i+1], fieldByIndex(v, index), p)
	}
	return true
}

// fieldByIndex is v.FieldByIndex, allocating (a copy of) each inlined
// struct pointer on the way.
func fieldByIndex(v reflect.Value, index []int) reflect.Value {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			v = ownPointer(v)
		}
		v = v.Field(x)
	}
	return v
}

// decodeMap decodes a mapping into a fresh copy of the map v (entries of
// the defaults kept, as yaml.v3 keeps them), refusing duplicate keys.
func (w *walker) decodeMap(n *yaml.Node, v reflect.Value, path string) bool {
	if n.Kind != yaml.MappingNode {
		w.add(n.Line, path, "expected a mapping, got %s", describeNode(n))
		return false
	}
	t := v.Type()
	m := reflect.MakeMapWithSize(t, v.Len()+len(n.Content)/2)
	for it := v.MapRange(); it.Next(); {
		m.SetMapIndex(it.Key(), it.Value())
	}
	seen := map[any]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, ok := w.key(n.Content[i], path)
		if !ok {
			continue
		}
		p := joinPath(path, kn.Value)
		k, ok := w.decodeEntry(kn, t.Key(), p)
		if !ok {
			continue
		}
		if first, dup := seen[k.Interface()]; dup {
			w.add(kn.Line, p, "duplicate key (first at line %d)", first)
			continue
		}
		seen[k.Interface()] = kn.Line
		if e, ok := w.decodeEntry(n.Content[i+1], t.Elem(), p); ok {
			m.SetMapIndex(k, e)
		}
	}
	v.Set(m)
	return true
}

func (w *walker) decodeList(n *yaml.Node, v reflect.Value, path string) bool {
	t := v.Type()
	switch {
	case n.Kind != yaml.SequenceNode:
		w.add(n.Line, path, "expected a list, got %s", describeNode(n))
		return false
	case t.Kind() == reflect.Array && len(n.Content) != t.Len():
		w.add(n.Line, path, "expected a list of %d elements, got %d", t.Len(), len(n.Content))
		return false
	}
	out := reflect.New(t).Elem()
	if t.Kind() == reflect.Slice {
		out = reflect.MakeSlice(t, len(n.Content), len(n.Content))
	}
	for i, c := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		if e, ok := w.decodeEntry(c, t.Elem(), p); ok {
			out.Index(i).Set(e)
		} else {
			w.unset[p] = true
		}
	}
	v.Set(out)
	return true
}

// decodeAny decodes into an empty interface as yaml.v3 does: a list as
// []any, a mapping as map[string]any when every key is a string (else
// map[any]any), a scalar as its resolved value.
func (w *walker) decodeAny(n *yaml.Node, v reflect.Value, path string) bool {
	if v.Type().NumMethod() > 0 {
		w.add(n.Line, path, "cannot decode into %s", v.Type())
		return false
	}
	var t reflect.Type
	switch n.Kind {
	case yaml.SequenceNode:
		t = anySliceType
	case yaml.MappingNode:
		t = stringAnyMapType
		for i := 0; i < len(n.Content); i += 2 {
			if n.Content[i].ShortTag() != "!!str" {
				t = anyAnyMapType
			}
		}
	default:
		return w.decodeScalar(n, v, path)
	}
	x := reflect.New(t).Elem()
	ok := w.decode(n, x, path)
	v.Set(x)
	return ok
}

// decodeScalar decodes a scalar with yaml.v3 into a fresh value and sets v
// to it, after refusing what yaml.v3 would decode lossily (scalarProblem).
func (w *walker) decodeScalar(n *yaml.Node, v reflect.Value, path string) bool {
	t := v.Type()
	if n.Kind != yaml.ScalarNode {
		w.add(n.Line, path, "expected %s, got %s", describeType(t), describeNode(n))
		return false
	}
	if msg := scalarProblem(n, t); msg != "" {
		w.add(n.Line, path, "%s", msg)
		return false
	}
	x := reflect.New(t)
	if err := n.Decode(x.Interface()); err != nil {
		w.decodeError(n, t, path, err)
		return false
	}
	v.Set(x.Elem())
	return true
}

// scalarProblem refuses the scalars yaml.v3 would decode lossily: it
// truncates a number such as 5.9 into an integer, and wraps an integer
// beyond 64 bits (which it reads as a float) into a uint64. Into an
// integer only an integer literal (YAML's !!int) is accepted. A number
// beyond float64's range (1e400) reads as a string; it is reported as out
// of range for a float.
func scalarProblem(n *yaml.Node, t reflect.Type) string {
	tag := n.ShortTag()
	switch {
	case isFloatKind(t.Kind()) && tag == "!!str" && n.Style == 0:
		if _, err := strconv.ParseFloat(n.Value, 64); errors.Is(err, strconv.ErrRange) {
			return fmt.Sprintf("%s is out of range for %s", n.Value, describeType(t))
		}
	case !isIntKind(t.Kind()) || t == durationType || tag == "!!int":
	case tag == "!!float" && n.Style == 0 && isIntegerLiteral(n.Value):
		return fmt.Sprintf("%s is out of range for %s", n.Value, describeType(t))
	default:
		return fmt.Sprintf("expected %s, got %s", describeType(t), describeNode(n))
	}
	return ""
}

// isIntegerLiteral reports whether s is an integer as YAML writes one
// (decimal, 0x, 0o or 0b, with optional underscores), of any size.
func isIntegerLiteral(s string) bool {
	_, ok := new(big.Int).SetString(strings.ReplaceAll(s, "_", ""), 0)
	return ok
}

// decodeError reports err of decoding scalar n into type t.
func (w *walker) decodeError(n *yaml.Node, t reflect.Type, path string, err error) {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		w.add(n.Line, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		return
	}
	isUint := t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uintptr
	if n.ShortTag() == "!!int" && t != durationType && isNumberKind(t.Kind()) && !(isUint && strings.HasPrefix(n.Value, "-")) {
		w.add(n.Line, path, "%s is out of range for %s", n.Value, describeType(t))
	} else {
		w.add(n.Line, path, "expected %s, got %s", describeType(t), describeNode(n))
	}
}

func isIntKind(k reflect.Kind) bool { return k >= reflect.Int && k <= reflect.Uintptr }

func isFloatKind(k reflect.Kind) bool { return k == reflect.Float32 || k == reflect.Float64 }

func isNumberKind(k reflect.Kind) bool {
	return (k >= reflect.Int && k <= reflect.Uint64) || isFloatKind(k)
}

func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if t.String() == "time.Duration" {
			return "a duration (e.g. 1m30s)"
		}
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return t.String()
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str":
			return fmt.Sprintf("string %q", n.Value)
		case "!!int":
			return "integer " + n.Value
		case "!!float":
			return "number " + n.Value
		case "!!bool":
			return "boolean " + n.Value
		case "!!null":
			return "null"
		}
		return fmt.Sprintf("%s %q", strings.TrimPrefix(n.Tag, "!!"), n.Value)
	}
	return "an unsupported node"
}

// eachYAMLField calls fn with the YAML key of every field of struct type t
// as yaml.v3 names them (the tag name, else the lower-cased field name;
// ",inline" structs merged; "-" and unexported fields skipped), in field
// order, with the field's index path.
func eachYAMLField(t reflect.Type, fn func(name string, index []int, f reflect.StructField)) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		switch {
		case tag == "-":
		case strings.Contains(","+opts+",", ",inline,"):
			ft := f.Type
			if ft.Kind() == reflect.Pointer && f.IsExported() {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				eachYAMLField(ft, func(name string, index []int, f reflect.StructField) {
					fn(name, append([]int{i}, index...), f)
				})
			}
		case f.IsExported():
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			fn(name, []int{i}, f)
		}
	}
}

// yamlFields maps the YAML keys of struct type t to their index paths.
func yamlFields(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	eachYAMLField(t, func(name string, index []int, _ reflect.StructField) { out[name] = index })
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
