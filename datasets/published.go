package datasets

import "slices"

// PublishedResult is the bits per character a model is reported to reach
// on a standard corpus's test split, as its paper gives it.
//
// enwik8 models bytes and text8 is ASCII, so bits per character on them are
// bits per byte: the same quantity as arbench's bits_per_byte on the same
// corpus with the standard split (LoadSplits).
type PublishedResult struct {
	// Model is the model as the paper names it.
	Model string
	// BPC is the published test bits per character.
	BPC float64
	// Params is the parameter count the paper gives; 0 where it could not
	// be confirmed.
	Params int64
	// Paper cites the paper: authors, year, title, arXiv id.
	Paper string
	Year  int
	// Where says where in the paper the number stands.
	Where string
	// Note qualifies the number when it is not a plain test-split result.
	Note string
}

// Papers of the published results.
const (
	paperGraves    = "Graves 2013, Generating Sequences With Recurrent Neural Networks, arXiv:1308.0850"
	paperCooijmans = "Cooijmans et al. 2016, Recurrent Batch Normalization, arXiv:1603.09025 (ICLR 2017)"
	paperKrause    = "Krause et al. 2016, Multiplicative LSTM for sequence modelling, arXiv:1609.07959"
	paperAlRfou    = "Al-Rfou et al. 2019, Character-Level Language Modeling with Deeper Self-Attention, arXiv:1808.04444 (AAAI 2019)"
	paperDai       = "Dai et al. 2019, Transformer-XL: Attentive Language Models Beyond a Fixed-Length Context, arXiv:1901.02860 (ACL 2019)"
)

// publishedResults is the table behind Published, best last. Every number
// was confirmed from the paper's abstract or results table (the parameter
// counts from the results tables, as the Papers with Code listings of
// these papers reproduce them).
func publishedResults() map[string][]PublishedResult {
	return map[string][]PublishedResult{
		"enwik8": {
			{Model: "LSTM, 7 layers (Graves)", BPC: 1.67, Paper: paperGraves, Year: 2013, Where: "Table 2",
				Note: "validation bits per character of Graves's own held-out part, static evaluation; not the 5M-byte test split; parameter count not confirmed"},
			{Model: "Large mLSTM", BPC: 1.24, Params: 46_000_000, Paper: paperKrause, Year: 2016, Where: "abstract (v3) and results table"},
			{Model: "12-layer character Transformer (T12)", BPC: 1.11, Params: 44_000_000, Paper: paperAlRfou, Year: 2019, Where: "results table"},
			{Model: "64-layer character Transformer (T64)", BPC: 1.06, Params: 235_000_000, Paper: paperAlRfou, Year: 2019, Where: "abstract and results table"},
			{Model: "Transformer-XL, 12 layers", BPC: 1.06, Params: 41_000_000, Paper: paperDai, Year: 2019, Where: "enwik8 results table"},
			{Model: "Transformer-XL, 18 layers", BPC: 1.03, Params: 88_000_000, Paper: paperDai, Year: 2019, Where: "enwik8 results table"},
			{Model: "Transformer-XL, 24 layers (large)", BPC: 0.99, Params: 277_000_000, Paper: paperDai, Year: 2019, Where: "abstract and enwik8 results table"},
		},
		"text8": {
			{Model: "BN-LSTM", BPC: 1.36, Params: 16_000_000, Paper: paperCooijmans, Year: 2016, Where: "text8 results table"},
			{Model: "Large mLSTM", BPC: 1.27, Params: 45_000_000, Paper: paperKrause, Year: 2016, Where: "abstract (v3) and results table"},
			{Model: "12-layer character Transformer (T12)", BPC: 1.18, Params: 44_000_000, Paper: paperAlRfou, Year: 2019, Where: "results table"},
			{Model: "64-layer character Transformer (T64)", BPC: 1.13, Params: 235_000_000, Paper: paperAlRfou, Year: 2019, Where: "abstract and results table"},
			{Model: "Transformer-XL (large)", BPC: 1.08, Params: 277_000_000, Paper: paperDai, Year: 2019, Where: "abstract and text8 results table"},
		},
	}
}

// Published returns the published test bits per character of well-known
// models on the named corpus (enwik8 or text8), from the simplest model to
// the best, for reports to list next to arbench's own results; nil for a
// corpus without such a table. The slice is the caller's to keep.
func Published(name string) []PublishedResult {
	return slices.Clone(publishedResults()[name])
}
