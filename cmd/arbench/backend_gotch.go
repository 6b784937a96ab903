//go:build gotch

package main

import _ "arbench/nn/gotch" // registers the "gotch" backend (libtorch; build with make build-gotch)
