// Command badaddr is a hostile test plugin: its handshake offers a TCP
// address instead of a socket in its socket directory.
package main

import (
	"fmt"
	"time"
)

func main() {
	fmt.Println("1|1|tcp|127.0.0.1:9|grpc||true")
	time.Sleep(time.Hour)
}
