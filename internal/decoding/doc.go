// Package decoding holds the model-independent algorithms of arbench's
// non-autoregressive and hybrid decoding: they read log-probability vectors
// ([]float32 over a vocabulary, as harness.Decoder hands them on) and never
// a model.
//
//   - Speculative decoding (Leviathan et al. 2023, "Fast Inference from
//     Transformers via Speculative Decoding", Algorithm 1; Chen et al. 2023,
//     "Accelerating Large Language Model Decoding with Speculative
//     Sampling"): Verify runs the acceptance test of a drafter's γ proposals
//     against one verifier pass, exactly (greedy: the verifier's own greedy
//     output; sampled: the verifier's own distribution). Probs and Sample are
//     the filtered distribution and the draw a drafter must use, the same as
//     harness.Generate's.
//   - Mask-predict (Ghazvininejad et al. 2019, "Mask-Predict: Parallel
//     Decoding of Conditional Masked Language Models", Sec. 3): RemaskCount
//     is the linear-decay schedule and MaskPredict drives T decoder passes
//     through a callback that is the model's one pass.
//
// The greedy choice everywhere is Argmax, the lowest token on ties, the same
// rule as harness.Argmax (tested), so a greedy hybrid reproduces the
// harness's greedy decoding token for token.
package decoding
