// Command nohandshake is a hostile test plugin: it never answers go-plugin's
// handshake.
package main

import "time"

func main() { time.Sleep(time.Hour) }
