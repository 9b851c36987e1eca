module example.com/assay/gobinary-testprog

go 1.21

require (
	github.com/google/uuid v1.3.0
	golang.org/x/text v0.3.7
)

// The test checks that the replacement, not the required version, is
// reported.
replace github.com/google/uuid => github.com/google/uuid v1.4.0
