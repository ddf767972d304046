package session

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/solo-rt/solo/pkg/kernel"
)

// checkpointMagic opens every checkpoint file, with its format version.
const checkpointMagic = "SOLO-CHECKPOINT 1\n"

// CheckpointHeader is the second line of a checkpoint file: what it is of.
type CheckpointHeader struct {
	Tenant  string `json:"tenant"`
	Session string `json:"session"`
	Label   string `json:"label"`
	Size    int64  `json:"size"` // bytes of payload after the signature line
}

// Checkpoint files are:
//
//	SOLO-CHECKPOINT 1\n
//	{"tenant":...,"session":...,"label":...,"size":N}\n
//	<hex HMAC-SHA256 of the two lines above and the payload>\n
//	<N bytes of payload: the kernel's pickle>
//
// [WriteCheckpoint] writes one atomically (mode 0600); [ReadCheckpoint]
// checks the size and the signature over all of it before it returns any
// payload, so a truncated or tampered file is refused whole.

// WriteCheckpoint signs payload with key and writes it to path atomically.
func WriteCheckpoint(path string, key []byte, h CheckpointHeader, payload []byte) error {
	h.Size = int64(len(payload))
	hb, err := json.Marshal(h)
	if err != nil {
		return err
	}
	head := append([]byte(checkpointMagic), append(hb, '\n')...)
	mac := checkpointMAC(key, head, payload)
	var buf bytes.Buffer
	buf.Grow(len(head) + len(mac) + 1 + len(payload))
	buf.Write(head)
	buf.Write(mac)
	buf.WriteByte('\n')
	buf.Write(payload)
	if err := kernel.WriteFileAtomic(path, buf.Bytes()); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}

func checkpointMAC(key, head, payload []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(head)
	m.Write(payload)
	sum := m.Sum(nil)
	out := make([]byte, hex.EncodedLen(len(sum)))
	hex.Encode(out, sum)
	return out
}

// ReadCheckpoint reads the checkpoint at path and returns its payload once
// it verified: the format, the size, the HMAC under key, and that it was
// written for want's tenant, session and label. Anything else returns
// [ErrCheckpointRefused] (a missing file [ErrCheckpointNotFound]), and no
// payload.
func ReadCheckpoint(path string, key []byte, want CheckpointHeader) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %q", ErrCheckpointNotFound, want.Label)
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	refuse := func(why string) error {
		return fmt.Errorf("%w: %s: %s", ErrCheckpointRefused, path, why)
	}
	r := bufio.NewReader(bytes.NewReader(b))
	magic, err := r.ReadString('\n')
	if err != nil || magic != checkpointMagic {
		return nil, refuse("not a Solo checkpoint (bad magic)")
	}
	hl, err := r.ReadBytes('\n')
	if err != nil {
		return nil, refuse("truncated header")
	}
	var h CheckpointHeader
	if err := json.Unmarshal(hl, &h); err != nil {
		return nil, refuse("bad header")
	}
	macLine, err := r.ReadBytes('\n')
	if err != nil {
		return nil, refuse("truncated signature")
	}
	payload, _ := io.ReadAll(r)
	if int64(len(payload)) != h.Size {
		return nil, refuse(fmt.Sprintf("size is %d bytes, header says %d: truncated or extended", len(payload), h.Size))
	}
	head := append([]byte(magic), hl...)
	if !hmac.Equal(bytes.TrimSuffix(macLine, []byte("\n")), checkpointMAC(key, head, payload)) {
		return nil, refuse("signature does not match: the file was changed, or signed with another key")
	}
	if h.Tenant != want.Tenant || h.Session != want.Session || h.Label != want.Label {
		return nil, refuse(fmt.Sprintf("written for %s/%s label %q", h.Tenant, h.Session, h.Label))
	}
	return payload, nil
}

// loadKey reads the checkpoint key at path, creating it (32 random bytes,
// mode 0600) if it does not exist.
func loadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) < 32 {
			return nil, fmt.Errorf("checkpoint key %s: %d bytes, want 32", path, len(b))
		}
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("checkpoint key: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return loadKey(path) // another opener won the race
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint key: %w", err)
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return key, f.Close()
}

// checkpointCode is run in the kernel to pickle its user namespace to a
// file. Names that start with "_" and IPython's own are left out; values
// pickle cannot serialise (modules, open files, lambdas...) are skipped and
// reported. It prints one JSON line.
const checkpointCode = `def _solo_checkpoint(path):
    import json, pickle, types
    ip = get_ipython()
    hidden = set(getattr(ip, "user_ns_hidden", {}))
    saved, skipped = {}, []
    for k, v in list(ip.user_ns.items()):
        if k.startswith("_") or k in hidden:
            continue
        if isinstance(v, types.ModuleType):
            skipped.append(k)
            continue
        try:
            pickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            skipped.append(k)
            continue
        saved[k] = v
    with open(path, "wb") as f:
        pickle.dump(saved, f, protocol=pickle.HIGHEST_PROTOCOL)
    print(json.dumps({"saved": sorted(saved), "skipped": sorted(skipped)}))
try:
    _solo_checkpoint(%s)
finally:
    del _solo_checkpoint
`

// restoreCode loads a verified payload into the user namespace.
const restoreCode = `def _solo_restore(path):
    import json, pickle
    with open(path, "rb") as f:
        data = pickle.load(f)
    get_ipython().user_ns.update(data)
    print(json.dumps({"restored": sorted(data)}))
try:
    _solo_restore(%s)
finally:
    del _solo_restore
`

// pyString quotes s as a Python string literal (JSON strings are).
func pyString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
