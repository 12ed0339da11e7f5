//go:build race

package route

// raceEnabled: under the race detector, the reference comparisons at
// 10 000 routes and with DIR-24-8's 64 MiB root take 80 and 50 s; `make
// unit` (no -race) runs them.
const raceEnabled = true
