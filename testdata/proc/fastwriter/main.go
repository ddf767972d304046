// Command fastwriter writes numbered lines to stdout as fast as it can, one
// write per line, for the log rotation tests:
//
//	fastwriter -bytes 16777216 -line 1024 -burst 16 -pause 1ms
//
// Each line is "%010d " followed by filler up to -line bytes with the newline.
// After every -burst lines it pauses -pause (0: never). The last line is
// "%010d done".
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	total := flag.Int64("bytes", 16<<20, "bytes to write")
	lineLen := flag.Int("line", 1024, "line length including the newline")
	burst := flag.Int("burst", 0, "lines between pauses")
	pause := flag.Duration("pause", 0, "pause after each burst")
	flag.Parse()
	if *lineLen < 16 {
		*lineLen = 16
	}
	filler := bytes.Repeat([]byte{'x'}, *lineLen)
	line := make([]byte, 0, *lineLen)
	var written int64
	seq := 0
	for written < *total {
		line = fmt.Appendf(line[:0], "%010d ", seq)
		line = append(line, filler[:*lineLen-len(line)-1]...)
		line = append(line, '\n')
		n, err := os.Stdout.Write(line)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		written += int64(n)
		seq++
		if *burst > 0 && *pause > 0 && seq%*burst == 0 {
			time.Sleep(*pause)
		}
	}
	fmt.Printf("%010d done\n", seq)
}
