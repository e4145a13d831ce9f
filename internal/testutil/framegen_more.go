package testutil

import "math/rand/v2"

// GenMoreFrames generates n Ethernet frames of the kinds GenFrames does
// not make, for the grammar beyond IP: each comes from one of the
// registered generators (moreFrameGens), picked at random, so that every
// kind appears in proportion. GenFrames' sequence is left as it is: tests
// that pin its frames keep them.
func GenMoreFrames(seed uint64, n int) [][]byte {
	g := &frameGen{r: rand.New(rand.NewPCG(seed, seed^0x2545f4914f6cdd1d))}
	frames := make([][]byte, 0, n)
	if len(moreFrameGens) == 0 {
		return frames
	}
	for len(frames) < n {
		gen := moreFrameGens[g.pick(len(moreFrameGens))]
		frames = append(frames, gen.fn(g))
	}
	return frames
}

// A moreFrameGen makes one kind of frame for GenMoreFrames: a whole
// Ethernet frame, which it may truncate itself.
type moreFrameGen struct {
	name string
	fn   func(g *frameGen) []byte
}

// moreFrameGens are GenMoreFrames' generators, registered by the files
// that define them (framegen_*.go) in init functions, kept in name order
// so that the sequence does not depend on the order of the files.
var moreFrameGens []moreFrameGen

// registerMoreFrames adds a generator to GenMoreFrames.
func registerMoreFrames(name string, fn func(g *frameGen) []byte) {
	i := 0
	for i < len(moreFrameGens) && moreFrameGens[i].name < name {
		i++
	}
	moreFrameGens = append(moreFrameGens, moreFrameGen{})
	copy(moreFrameGens[i+1:], moreFrameGens[i:])
	moreFrameGens[i] = moreFrameGen{name, fn}
}
