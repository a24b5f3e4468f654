// Package yamlcfg decodes the edge's YAML (and JSON, which is YAML)
// documents: ${VAR} expansion after parsing, unknown keys refused, and
// every problem named by its key path, never by its value (a secret may
// have been pasted into the wrong key). The config file and connection
// specs share it, so there is one implementation.
package yamlcfg

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Decode parses data, expands ${VAR} and ${VAR:-default} in string values
// from lookup, and decodes the result into out with unknown keys refused.
// Expansion happens after parsing, so a value holding YAML syntax cannot
// change the document's structure. Every problem is returned, each naming
// its key path below prefix ("" for the document's root, or e.g.
// "sources[0]").
func Decode(data []byte, prefix string, lookup func(string) (string, bool), out any) []error {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return []error{syntaxError(err)}
	}
	var errs []error
	expandNode(&root, prefix, lookup, &errs)
	expanded, err := yaml.Marshal(&root)
	if err != nil {
		return append(errs, errors.New("document cannot be re-encoded after expansion"))
	}
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			keys, values := keyPaths(expanded, prefix)
			for _, e := range te.Errors {
				errs = append(errs, errors.New(describe(e, keys, values)))
			}
		} else {
			errs = append(errs, syntaxError(err))
		}
	}
	return errs
}

// syntaxError keeps yaml's own message for a syntax error (it names a
// line and a construct, not a value) but drops any quoted text.
func syntaxError(err error) error {
	msg := err.Error()
	if i := strings.IndexAny(msg, "`\"'"); i >= 0 {
		msg = strings.TrimSpace(msg[:i])
	}
	return fmt.Errorf("document: %s", msg)
}

// lineKey is a mapping key by its line in the expanded document.
type lineKey struct {
	line int
	name string
}

// keyPaths maps every mapping key of doc to its full path (sources[1].bukket),
// for naming unknown keys, and every line holding a value to the path of
// that value, for naming type errors.
func keyPaths(doc []byte, prefix string) (map[lineKey]string, map[lineKey]string) {
	var root yaml.Node
	keys := map[lineKey]string{}
	values := map[lineKey]string{} // by line and tag (!!str, !!seq, …): the first node there
	if yaml.Unmarshal(doc, &root) != nil {
		return keys, values
	}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		if path != "" && n.Kind != yaml.DocumentNode {
			k := lineKey{n.Line, n.ShortTag()}
			if _, ok := values[k]; !ok {
				values[k] = path
			}
		}
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
			return
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := Join(path, n.Content[i].Value)
				keys[lineKey{n.Content[i].Line, n.Content[i].Value}] = k
				walk(n.Content[i+1], k)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(&root, prefix)
	return keys, values
}

// Join appends key to the path prefix.
func Join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

var (
	reUnknown = regexp.MustCompile(`^line (\d+): field (\S+) not found in type`)
	reType    = regexp.MustCompile(`^line (\d+): cannot unmarshal (!!\w+)`)
	reLine    = regexp.MustCompile(`^line (\d+):`)
)

// describe rewrites one yaml type error as "PATH: problem" without the
// value yaml quotes ("cannot unmarshal !!str `s3cr3t` into int"): line
// numbers refer to the expanded document, the path names the key in the
// operator's file.
func describe(msg string, keys map[lineKey]string, values map[lineKey]string) string {
	if m := reUnknown.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if p, ok := keys[lineKey{line, m[2]}]; ok {
			return p + ": unknown key"
		}
		return "line " + m[1] + ": unknown key"
	}
	if m := reType.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		want := "another type"
		if i := strings.LastIndex(msg, " into "); i >= 0 {
			want = typeName(msg[i+len(" into "):])
		}
		where := "line " + m[1]
		if p, ok := values[lineKey{line, m[2]}]; ok {
			where = p
		}
		return where + ": wrong type: a " + kindName(m[2]) + " where " + want + " is wanted"
	}
	if m := reLine.FindStringSubmatch(msg); m != nil {
		return "line " + m[1] + ": invalid value"
	}
	return "document: invalid value"
}

func kindName(tag string) string {
	switch tag {
	case "!!str":
		return "string"
	case "!!int":
		return "integer"
	case "!!float":
		return "number"
	case "!!bool":
		return "boolean"
	case "!!map":
		return "mapping"
	case "!!seq":
		return "list"
	case "!!null":
		return "null"
	}
	return "value"
}

// typeName says what Go type yaml wanted, in the operator's words.
func typeName(t string) string {
	switch {
	case t == "time.Duration":
		return "a duration (e.g. 30s, 1h)"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "a mapping"
	case t == "bool":
		return "a boolean"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		return "an integer"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "string":
		return "a string"
	}
	return "a mapping"
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

// expandNode expands ${VAR} in every scalar value, recording an error,
// named by key, for each unset variable without a default.
func expandNode(n *yaml.Node, path string, lookup func(string) (string, bool), errs *[]error) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			expandNode(c, path, lookup, errs)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			expandNode(n.Content[i+1], Join(path, n.Content[i].Value), lookup, errs)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expandNode(c, fmt.Sprintf("%s[%d]", path, i), lookup, errs)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return
		}
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
			sub := envRef.FindStringSubmatch(m)
			if v, ok := lookup(sub[1]); ok && v != "" {
				return v
			}
			if sub[2] != "" {
				return sub[2][2:]
			}
			*errs = append(*errs, fmt.Errorf("%s: environment variable %s is not set", path, sub[1]))
			return ""
		})
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
			n.Tag = "" // a plain scalar is resolved again after expansion
		}
	}
}
