// Command spin burns CPU forever; only the sandbox's deadline ends it.
package main

import "fmt"

func main() {
	fmt.Println("spinning")
	n := 0
	for {
		n++
	}
}
