// Command memhog allocates and touches memory without bound.
package main

import (
	"fmt"
	"os"
)

func main() {
	var keep [][]byte
	for i := 0; ; i++ {
		b := make([]byte, 1<<20)
		for j := range b {
			b[j] = byte(j)
		}
		keep = append(keep, b)
		if i%16 == 0 {
			fmt.Fprintf(os.Stderr, "%d MiB\n", i)
		}
	}
}
