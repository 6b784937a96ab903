// Package all links every model plugin into a binary: import it for its
// side effects (import _ "arbench/plugins/all").
package all

import (
	// Model plugins register themselves in init.
	_ "arbench/plugins/bernoulli"
	_ "arbench/plugins/external"
	_ "arbench/plugins/hybrid"
	_ "arbench/plugins/lstm"
	_ "arbench/plugins/nar"
	_ "arbench/plugins/pixelcnn"
	_ "arbench/plugins/rnn"
	_ "arbench/plugins/s2s"
	_ "arbench/plugins/transformer"
)
