// Command exit0 exits with status 0 at once: the sandbox's start/stop cost.
package main

func main() {}
