// Command idle says "ready" and then sleeps until killed, so a test can
// look at it from the host.
package main

import (
	"fmt"
	"time"
)

func main() {
	fmt.Println("ready")
	for {
		time.Sleep(time.Hour)
	}
}
