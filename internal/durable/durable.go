// Package durable holds the small file-system steps that make a change
// survive a crash, so that each is written once.
package durable

import "os"

// SyncDir fsyncs the directory dir, so that a file created, linked or
// renamed in it is still there after a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
