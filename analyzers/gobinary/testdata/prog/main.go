// Command prog is the Go program whose binary the gobinary analyzer's tests
// build and inspect. It only has to link its dependencies.
package main

import (
	"fmt"

	"github.com/google/uuid"
	"golang.org/x/text/language"
)

func main() {
	fmt.Println(uuid.NewString(), language.English)
}
