package solo_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/solo"
)

// readmeLibrary is the README's library snippet, verbatim between the
// markers, so that it compiles with the package; TestREADME_LibrarySnippet
// keeps the two equal.
func readmeLibrary(ctx context.Context) error {
	// README begin
	rt, err := solo.Open(ctx, solo.Options{DataDir: "/var/lib/myapp/solo"})
	if err != nil {
		return err
	}
	defer rt.Close(ctx)
	res, err := rt.Deploy(ctx, solo.Spec{Name: "worker", Command: []string{"./worker"}})
	if err != nil {
		return err // an invalid spec names its field; nothing was written
	}
	// Wait for the first attempt: started (exec succeeded), or why not.
	wctx, cancel := context.WithTimeout(ctx, solo.DefaultStartWait)
	defer cancel()
	view, err := rt.WaitStarted(wctx, "default", "worker", res.Pos)
	if err != nil {
		return err // errors.Is(err, solo.ErrStartFailed): "fork/exec ./worker: no such file ..."
	}
	fmt.Println("worker runs as pid", view.PID)
	// README end
	return nil
}

var _ = readmeLibrary

// TestREADME_LibrarySnippet checks that the README's library snippet is
// the body of readmeLibrary, which the compiler checks.
func TestREADME_LibrarySnippet(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(readme), "As a library")
	require.True(t, ok, "README has no library section")
	_, block, ok := strings.Cut(after, "```go\n")
	require.True(t, ok, "README's library section has no go block")
	block, _, ok = strings.Cut(block, "```")
	require.True(t, ok)

	src, err := os.ReadFile("readme_test.go")
	require.NoError(t, err)
	_, body, _ := strings.Cut(string(src), "\t// README begin\n")
	body, _, _ = strings.Cut(body, "\t// README end\n")
	var want strings.Builder
	for _, line := range strings.SplitAfter(body, "\n") {
		want.WriteString(strings.TrimPrefix(line, "\t"))
	}
	require.Equal(t, want.String(), block, "README's library snippet differs from readmeLibrary in readme_test.go: change both")
}
