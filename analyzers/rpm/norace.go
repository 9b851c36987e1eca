//go:build !race

package rpm

// raceEnabled tells whether the race detector is on.
const raceEnabled = false
