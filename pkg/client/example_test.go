package client_test

import (
	"errors"
	"fmt"

	"github.com/solo-rt/solo/pkg/client"
)

// A CLI maps a client's errors to its exit codes.
func ExampleAPIError() {
	exitCode := func(err error) int {
		switch {
		case err == nil:
			return 0
		case errors.Is(err, client.ErrUnreachable):
			return 5
		case client.IsDenied(err):
			return 4
		case client.IsNotFound(err):
			return 3
		}
		return 1
	}
	err := fmt.Errorf("status: %w", &client.APIError{Status: 404, Code: "not_found", Message: "service default/web: service not found"})
	fmt.Println(err)
	fmt.Println(exitCode(err))
	fmt.Println(exitCode(&client.APIError{Status: 403, Code: "denied", Message: "no"}))
	// Output:
	// status: service default/web: service not found (not_found)
	// 3
	// 4
}
