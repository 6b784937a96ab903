package external

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode"

	"arbench/harness"
)

// ProtocolVersion is the protocol arbench speaks (PROTOCOL.md).
const ProtocolVersion = 1

// JSON-RPC 2.0 error codes of PROTOCOL.md.
const (
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeModelFailed    = -32000
)

// Capability names of a describe result.
const (
	CapTrainStep    = "train_step"
	CapScore        = "score"
	CapNextLogProbs = "next_logprobs"
	CapStep         = "step"
	CapSave         = "save"
	CapLoad         = "load"
	CapScoreText    = "score_text"
	CapTranslate    = "translate"
)

// capabilities lists the capability names a plugin may declare.
var capabilities = []string{CapTrainStep, CapScore, CapNextLogProbs, CapStep, CapSave, CapLoad, CapScoreText, CapTranslate}

type request struct {
	JSONRPC string `json:"jsonrpc"`
	ID      int64  `json:"id"`
	Method  string `json:"method"`
	Params  any    `json:"params"`
}

type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      *int64          `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *RPCError       `json:"error"`
}

// RPCError is an error response of the plugin.
type RPCError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

func (e *RPCError) Error() string {
	s := fmt.Sprintf("%s (code %d)", e.Message, e.Code)
	var data string
	if json.Unmarshal(e.Data, &data) == nil && data != "" {
		s += ": " + data
	}
	return s
}

// Description is a plugin's describe result.
type Description struct {
	Protocol      int      `json:"protocol"`
	Family        string   `json:"family"`
	Capabilities  []string `json:"capabilities"`
	Deterministic bool     `json:"deterministic"`
	MaxContext    int      `json:"max_context"`
	FLOPsPerToken float64  `json:"flops_per_token"`
	// Conditional models read a source and must declare translate;
	// DecodeSettings are the settings an evaluation sweeps.
	Conditional    bool                    `json:"conditional"`
	DecodeSettings []harness.DecodeSetting `json:"decode_settings"`
	// Runtime (optional) says what computes the model, for tables:
	// "PyTorch 2.15.0, 2 threads, MKL, oneDNN".
	Runtime string `json:"runtime"`
}

// maxRuntime is the longest runtime description accepted.
const maxRuntime = 200

// Has reports whether the plugin declared capability c.
func (d *Description) Has(c string) bool { return slices.Contains(d.Capabilities, c) }

// check reports a description arbench cannot work with.
func (d *Description) check() error {
	if d.Protocol != ProtocolVersion {
		return fmt.Errorf("speaks protocol %d; arbench speaks %d", d.Protocol, ProtocolVersion)
	}
	if d.Family == "" {
		return fmt.Errorf("describe: no family")
	}
	for _, c := range d.Capabilities {
		if !slices.Contains(capabilities, c) {
			return fmt.Errorf("describe: unknown capability %q (known: %v)", c, capabilities)
		}
	}
	if d.MaxContext < 0 || !(d.FLOPsPerToken >= 0) || math.IsInf(d.FLOPsPerToken, 0) {
		return fmt.Errorf("describe: max_context %d and flops_per_token %v must be non-negative and finite", d.MaxContext, d.FLOPsPerToken)
	}
	if len(d.Runtime) > maxRuntime || strings.ContainsFunc(d.Runtime, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return fmt.Errorf("describe: runtime must be at most %d printable characters on one line", maxRuntime)
	}
	if d.Conditional != d.Has(CapTranslate) {
		return fmt.Errorf("describe: a conditional model declares translate, and only a conditional one does (conditional %v, capabilities %v)", d.Conditional, d.Capabilities)
	}
	baselines := 0
	for _, s := range d.DecodeSettings {
		if s.Name == "" {
			return errors.New("describe: a decode setting without a name")
		}
		if s.Baseline {
			baselines++
		}
	}
	if baselines > 1 {
		return fmt.Errorf("describe: %d baseline decode settings, at most one", baselines)
	}
	return nil
}

// Array is a numeric array on the wire: dtype, shape and the little-endian
// bytes in standard base64.
type Array struct {
	DType string `json:"dtype"`
	Shape []int  `json:"shape"`
	Data  string `json:"data"`
}

// ints encodes equal-length rows of token ids as an int32 [len(rows), T]
// array.
func ints(rows [][]int) (Array, error) {
	T := 0
	if len(rows) > 0 {
		T = len(rows[0])
	}
	buf := make([]byte, 0, 4*len(rows)*T)
	for i, r := range rows {
		if len(r) != T {
			return Array{}, fmt.Errorf("row %d has %d tokens, row 0 %d", i, len(r), T)
		}
		for _, v := range r {
			if v < math.MinInt32 || v > math.MaxInt32 {
				return Array{}, fmt.Errorf("token %d does not fit int32", v)
			}
			buf = binary.LittleEndian.AppendUint32(buf, uint32(int32(v)))
		}
	}
	return Array{DType: "int32", Shape: []int{len(rows), T}, Data: base64.StdEncoding.EncodeToString(buf)}, nil
}

// ints1 encodes one token per row as an int32 [len(tokens)] array.
func ints1(tokens []int) (Array, error) {
	a, err := ints([][]int{tokens})
	a.Shape = []int{len(tokens)}
	return a, err
}

// floats decodes a float32 array of exactly the shape want.
func floats(name string, a *Array, want ...int) ([]float32, error) {
	if a == nil {
		return nil, fmt.Errorf("%s: missing", name)
	}
	if a.DType != "float32" {
		return nil, fmt.Errorf("%s: dtype %q, want float32", name, a.DType)
	}
	if !slices.Equal(a.Shape, want) {
		return nil, fmt.Errorf("%s: shape %v, want %v", name, a.Shape, want)
	}
	n := 1
	for _, d := range want {
		n *= d
	}
	if base64.StdEncoding.DecodedLen(len(a.Data)) < 4*n || base64.StdEncoding.DecodedLen(len(a.Data)) > 4*n+3 {
		return nil, fmt.Errorf("%s: %d base64 characters cannot hold %d float32 values", name, len(a.Data), n)
	}
	b, err := base64.StdEncoding.DecodeString(a.Data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(b) != 4*n {
		return nil, fmt.Errorf("%s: %d bytes, want %d (shape %v)", name, len(b), 4*n, want)
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out, nil
}
