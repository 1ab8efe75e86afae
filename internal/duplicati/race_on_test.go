//go:build race

package duplicati

// raceEnabled: the race detector slows the single-goroutine mutation test eightfold and
// has nothing to find there, so it runs fewer samples.
const raceEnabled = true
