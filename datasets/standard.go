package datasets

// The standard character-level corpora, downloaded over HTTP (see archive).
//
// Where each checksum comes from (no host of these files is reachable from
// the machine this table was written on, so none was computed here; each
// is a value published or pinned by others, cross-checked where possible):
//
//   - enwik8.zip, 36445475 bytes, sha256 547994d9…: huggingface/datasets,
//     datasets/enwik8/dataset_infos.json ("download_checksums" of
//     http://mattmahoney.net/dc/enwik8.zip), the same value pinned by
//     several other public repositories.
//   - enwik8 (the member), 100000000 bytes, sha256 2b49720e…: pinned by
//     several independent public repositories, one of them recording the
//     output of `sha256sum enwik8` next to the zip's hash above; one also
//     gives Mahoney's published MD5 a1fa5ffddb56f4953e226637dabbb36a.
//   - text8.zip, 31344016 bytes, sha256 a6640522…: tensorflow/tensorflow,
//     tensorflow/examples/tutorials/word2vec/word2vec_basic.py
//     (maybe_download('text8.zip', 31344016, sha256=…)).
//   - text8 (the member), 100000000 bytes, sha256 6e890197…: pinned by
//     several independent public repositories next to the zip's hash.
//   - wikitext-103-raw-v1.zip, 191984949 bytes, sha256 91c00ae2…:
//     huggingface/datasets, datasets/wikitext/dataset_infos.json (config
//     wikitext-103-raw-v1), also pinned by other public repositories.
//   - wiki.train.raw, wiki.valid.raw, wiki.test.raw: no SHA-256 or size
//     is published that could be found; their SHA-1s are those of
//     dmlc/gluon-nlp, gluonnlp/data/language_model.py (class
//     WikiText103Raw; the valid and test SHA-1s equal those of its
//     WikiText2Raw, as the two corpora share those articles). The files
//     are verified against these SHA-1s on extraction and on every load,
//     and their SHA-256 is computed then for the run's manifest; the
//     archive itself is pinned by SHA-256 and size.

// The standard split of enwik8 and text8: the first 90,000,000 bytes train,
// the next 5,000,000 validation, the last 5,000,000 test (num_test_chars =
// 5000000 in Transformer-XL's prep_enwik8.py and prep_text8.py, Dai et al.
// 2019, and in the Hutter Prize preparation scripts of earlier RNN work),
// so bits per character are comparable with the published numbers (see
// Published).
var standardSplit = [3]int64{90_000_000, 5_000_000, 5_000_000}

func standardCorpora() []corpus {
	return []corpus{
		{
			name:  "enwik8",
			kind:  KindText,
			large: true,
			desc: "enwik8: the first 100000000 bytes of the English Wikipedia XML dump of 2006-03-03 (the Hutter Prize file), " +
				"from http://mattmahoney.net/dc/enwik8.zip (36445475 bytes); split 90M/5M/5M bytes",
			archive: &archive{
				file:   "enwik8.zip",
				url:    "http://mattmahoney.net/dc/enwik8.zip",
				size:   36445475,
				sha256: "547994d9980ebed1288380d652999f38a14fe291a6247c157c3d33d4932534bc",
			},
			members: []member{{
				file: "enwik8", zipName: "enwik8", size: 100_000_000,
				sha256: "2b49720ec4d78c3c9fabaee6e4179a5e997302b3a70029f30f2d582218c024a8",
			}},
			splitSizes: standardSplit,
		},
		{
			name:  "text8",
			kind:  KindText,
			large: true,
			desc: "text8: 100000000 bytes of lowercase a-z and space, Mahoney's cleaning of the same Wikipedia dump, " +
				"from http://mattmahoney.net/dc/text8.zip (31344016 bytes); split 90M/5M/5M bytes",
			archive: &archive{
				file:   "text8.zip",
				url:    "http://mattmahoney.net/dc/text8.zip",
				size:   31344016,
				sha256: "a6640522afe85d1963ad56c05b0ede0a0c000dddc9671758a6cc09b7a38e5232",
			},
			members: []member{{
				file: "text8", zipName: "text8", size: 100_000_000,
				sha256: "6e890197040d37d85beb962ae1f041ff1d9a9ca8d20c7d99c85027eebf51dca7",
			}},
			splitSizes: standardSplit,
		},
		wikitext103Raw(),
	}
}

// wikitext103Raw is WikiText-103 in its raw (character-level) form, Merity
// et al. 2016, "Pointer Sentinel Mixture Models" (arXiv:1609.07843), with
// its published train/valid/test files.
func wikitext103Raw() corpus {
	const dir = "wikitext-103-raw/"
	return corpus{
		name:  "wikitext-103-raw",
		kind:  KindText,
		large: true,
		desc: "WikiText-103 raw (Merity et al. 2016): Wikipedia Good and Featured articles, untokenised, " +
			"its published train/valid/test files, from Salesforce's wikitext-103-raw-v1.zip (191984949 bytes)",
		archive: &archive{
			file:   "wikitext-103-raw-v1.zip",
			url:    "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-103-raw-v1.zip",
			size:   191984949,
			sha256: "91c00ae287f0d699e18605c84afc9e45c192bc6b7797ff8837e5474655a33794",
		},
		// About 0.5 GB, 1.2 MB and 1.3 MB; the bounds leave room without
		// admitting a runaway member.
		members: []member{
			{file: "wiki.train.raw", zipName: dir + "wiki.train.raw", maxSize: 1 << 30,
				sha1: "3d06627c15e834408cfee91293f862c11c1cc9ef"},
			{file: "wiki.valid.raw", zipName: dir + "wiki.valid.raw", maxSize: 64 << 20,
				sha1: "db78d4db83700cba1b1bf4a9381087043db2876d"},
			{file: "wiki.test.raw", zipName: dir + "wiki.test.raw", maxSize: 64 << 20,
				sha1: "6f1fe2054a940eebfc76b284b09680763b37f5ea"},
		},
		splitFiles: true,
	}
}
