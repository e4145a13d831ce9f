//go:build !unix

package main

import "os"

const oNoFollow = 0

var (
	infoSignal  os.Signal
	stopSignals = []os.Signal{os.Interrupt}
	pipeSignal  os.Signal
)

func closedStdio() (closed [3]bool) { return closed }
