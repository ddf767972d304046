package cgroup

import (
	"context"
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// BenchmarkGroup_Parts times each step a service start and stop pays.
func BenchmarkGroup_Parts(b *testing.B) {
	m := Open(b.TempDir())
	if !m.Available() {
		b.Fatal(m.Reason())
	}
	defer m.Prune()
	var gs []*Group
	b.Run("create", func(b *testing.B) {
		for i := range b.N {
			g, err := m.Create("t", fmt.Sprintf("s%d", i+len(gs)), Limits{})
			if err != nil {
				b.Fatal(err)
			}
			gs = append(gs, g)
		}
	})
	g := gs[0]
	b.Run("enter-leave", func(b *testing.B) {
		for range b.N {
			if err := g.Start(&syscall.SysProcAttr{}, func() error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("oomkills", func(b *testing.B) {
		for range b.N {
			if _, err := g.OOMKills(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("kill-empty", func(b *testing.B) {
		for range b.N {
			if err := g.Kill(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("start-true", func(b *testing.B) {
		for range b.N {
			cmd := exec.Command("true")
			cmd.SysProcAttr = &syscall.SysProcAttr{}
			if err := g.Start(cmd.SysProcAttr, cmd.Start); err != nil {
				b.Fatal(err)
			}
			cmd.Wait()
		}
	})
	_ = time.Second
	ctx := context.Background()
	for _, g := range gs {
		_ = g.Kill(ctx)
	}
}

// BenchmarkManager_Prune removes 100 empty service cgroups.
func BenchmarkManager_Prune(b *testing.B) {
	for range b.N {
		b.StopTimer()
		m := Open(b.TempDir())
		for i := range 100 {
			if _, err := m.Create("t", fmt.Sprintf("s%d", i), Limits{}); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		m.Prune()
	}
}
