package solo_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLibraryForcesNoGC reads the library's own source: no package of it
// forces a collection or returns memory to the OS behind its host program's
// back, except the one function that Options.ReleaseMemoryAfterApply turns
// on (off by default; the daemon turns it on).
func TestLibraryForcesNoGC(t *testing.T) {
	allowed := map[string]bool{"releaseMemoryAfterStarts": true}
	root := filepath.Join("..", "..")
	var found []string
	for _, dir := range []string{"pkg", "eventstore", "supervisor", "recovery", "capability", "shutdown"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
			if err != nil {
				return err
			}
			for _, decl := range f.Decls {
				fn, ok := decl.(*ast.FuncDecl)
				if !ok || allowed[fn.Name.Name] {
					continue
				}
				ast.Inspect(fn, func(n ast.Node) bool {
					call, ok := n.(*ast.CallExpr)
					if !ok {
						return true
					}
					if sel, ok := call.Fun.(*ast.SelectorExpr); ok {
						if pkg, ok := sel.X.(*ast.Ident); ok {
							name := pkg.Name + "." + sel.Sel.Name
							if name == "runtime.GC" || name == "debug.FreeOSMemory" {
								found = append(found, path+": "+fn.Name.Name+" calls "+name)
							}
						}
					}
					return true
				})
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(found) > 0 {
		t.Fatalf("library code forces a collection:\n%s", strings.Join(found, "\n"))
	}
}
