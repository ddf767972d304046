package kernel

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// SignatureScheme is the only scheme this package signs and verifies with.
const SignatureScheme = "hmac-sha256"

// ConnectionInfo is the content of a Jupyter connection file: where the
// kernel listens and the key its messages are signed with. The key is a
// secret: it must never be logged or written anywhere but the connection
// file (mode 0600).
type ConnectionInfo struct {
	Transport       string `json:"transport"`
	IP              string `json:"ip"`
	ShellPort       int    `json:"shell_port"`
	IOPubPort       int    `json:"iopub_port"`
	StdinPort       int    `json:"stdin_port"`
	ControlPort     int    `json:"control_port"`
	HBPort          int    `json:"hb_port"`
	Key             string `json:"key"`
	SignatureScheme string `json:"signature_scheme"`
	KernelName      string `json:"kernel_name,omitempty"`
}

// NewConnectionInfo returns a connection on ip (default 127.0.0.1) over TCP
// with a fresh random 256-bit key and every port 0: the kernel it is
// written for binds ports of its own choosing and writes them back into
// the file ([WaitConnectionFile] waits for that). Ports picked here and
// bound later by the kernel could be taken by another process in between.
func NewConnectionInfo(ip, kernelName string) (ConnectionInfo, error) {
	if ip == "" {
		ip = "127.0.0.1"
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return ConnectionInfo{}, fmt.Errorf("kernel key: %w", err)
	}
	return ConnectionInfo{
		Transport: "tcp", IP: ip,
		Key: hex.EncodeToString(key), SignatureScheme: SignatureScheme, KernelName: kernelName,
	}, nil
}

// Bound reports whether every port of info is set: the kernel has bound
// them.
func (info ConnectionInfo) Bound() bool {
	for _, p := range info.ports() {
		if p == 0 {
			return false
		}
	}
	return true
}

func (info ConnectionInfo) ports() []int {
	return []int{info.ShellPort, info.IOPubPort, info.StdinPort, info.ControlPort, info.HBPort}
}

// Validate checks that info can be dialled and verified.
func (info ConnectionInfo) Validate() error { return info.validate(true) }

// validate checks info; its ports only if bound (0 is allowed otherwise).
func (info ConnectionInfo) validate(bound bool) error {
	if info.Transport != "tcp" {
		return fmt.Errorf("%w: transport %q (only tcp)", ErrBadConnectionFile, info.Transport)
	}
	if info.SignatureScheme != SignatureScheme {
		return fmt.Errorf("%w: signature scheme %q (only %s)", ErrBadConnectionFile, info.SignatureScheme, SignatureScheme)
	}
	if info.Key == "" {
		return fmt.Errorf("%w: empty key: messages would not be signed", ErrBadConnectionFile)
	}
	if net.ParseIP(info.IP) == nil {
		return fmt.Errorf("%w: ip %q", ErrBadConnectionFile, info.IP)
	}
	for _, p := range info.ports() {
		if (p <= 0 && bound) || p < 0 || p > 65535 {
			return fmt.Errorf("%w: port %d", ErrBadConnectionFile, p)
		}
	}
	return nil
}

func (info ConnectionInfo) endpoint(port int) string {
	return fmt.Sprintf("%s://%s", info.Transport, net.JoinHostPort(info.IP, fmt.Sprint(port)))
}

// WriteConnectionFile writes info to path atomically (a temporary file in
// the same directory, fsynced, then renamed) with mode 0600, so that a
// reader never sees half a file and no other user can read the key.
func WriteConnectionFile(path string, info ConnectionInfo) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return fmt.Errorf("write connection file: %w", err)
	}
	if err := WriteFileAtomic(path, b); err != nil {
		return fmt.Errorf("write connection file: %w", err)
	}
	return nil
}

// ReadConnectionFile reads and validates a connection file.
func ReadConnectionFile(path string) (ConnectionInfo, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return ConnectionInfo{}, fmt.Errorf("read connection file: %w", err)
	}
	var info ConnectionInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return ConnectionInfo{}, fmt.Errorf("read connection file %s: %w: %w", path, ErrBadConnectionFile, err)
	}
	if err := info.Validate(); err != nil {
		return ConnectionInfo{}, fmt.Errorf("read connection file %s: %w", path, err)
	}
	return info, nil
}

// WriteFileAtomic writes b to path with mode 0600: to a temporary file in
// the same directory, fsynced, renamed over path, and the directory
// fsynced. A crash leaves either the old file or the new one, never a mix.
func WriteFileAtomic(path string, b []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if _, err = f.Write(b); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
