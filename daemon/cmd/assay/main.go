// Command assay is the command-line client of assayd, the container-image
// scan daemon. It speaks assayd's HTTP/JSON API on a Unix socket (--socket,
// else $ASSAY_SOCKET, else /run/assay/assayd.sock) and nothing else: it
// neither pulls nor scans images itself.
//
// Exit codes:
//
//	0  success
//	1  error: assayd unreachable, an API error, a bad response, interrupted
//	2  usage error: bad flags or arguments
//	3  the verdict is unhealthy and --fail-on-unhealthy was given (scan --wait, report)
//	4  the waited-for scan ended failed or cancelled (scan --wait)
//	5  the verdict is incomplete and --fail-on-incomplete was given (scan --wait, report)
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
