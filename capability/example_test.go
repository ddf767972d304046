package capability_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/solo-rt/solo/capability"
	"go.etcd.io/bbolt"
)

func Example() {
	dir, _ := os.MkdirTemp("", "solo")
	defer os.RemoveAll(dir)
	db, err := bbolt.Open(filepath.Join(dir, "solo.db"), 0o600, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	ctx := context.Background()
	s, err := capability.Open(ctx, db, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	tok, plaintext, err := s.Grant(ctx, capability.GrantRequest{
		Tenant:   "default",
		Scopes:   []capability.Scope{capability.ScopeRead, capability.ScopeLogs},
		Services: "web-*",
		Actor:    "local",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(plaintext), capability.Validate(plaintext) == nil, tok.ExpiresAt.Sub(tok.CreatedAt))

	tok, err = s.Authenticate(plaintext)
	fmt.Println(err)
	fmt.Println(tok.Allows(capability.ScopeLogs, "default", "web-1"))
	var se *capability.ScopeError
	err = tok.Allows(capability.ScopeDeploy, "default", "web-1")
	fmt.Println(errors.As(err, &se), se.Scope, errors.Is(err, capability.ErrScope))
	fmt.Println(tok.Allows(capability.ScopeRead, "default", "db"))
	fmt.Println(tok.Allows(capability.ScopeRead, "acme", "web-1"))

	if _, err := s.Revoke(ctx, tok.ID, tok.CreatedAt); err != nil {
		log.Fatal(err)
	}
	_, err = s.Authenticate(plaintext)
	fmt.Println(errors.Is(err, capability.ErrRevoked))
	// Output:
	// 54 true 24h0m0s
	// <nil>
	// <nil>
	// true deploy true
	// token is not valid for this service
	// token is not valid for this tenant
	// true
}
