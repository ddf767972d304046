package kernel

import "errors"

// Errors about messages on the wire.
var (
	// ErrBadSignature is returned by [Signer.Decode] (and so dropped by a
	// [Client]) for a message whose HMAC-SHA256 signature does not match its
	// parts: tampered, or signed with another key.
	ErrBadSignature = errors.New("kernel: bad message signature")

	// ErrMalformed is returned by [Signer.Decode] for frames that are not a
	// Jupyter message: no delimiter, missing parts, or JSON that does not
	// decode.
	ErrMalformed = errors.New("kernel: malformed message")
)

// Errors about the connection.
var (
	// ErrClosed is returned by every call on a [Client] after
	// [Client.Close], and by calls in flight when it closes.
	ErrClosed = errors.New("kernel: client closed")

	// ErrDisconnected is returned by calls in flight, and every later call,
	// once a socket to the kernel broke: the kernel died or closed the
	// connection. Dial a new client.
	ErrDisconnected = errors.New("kernel: connection lost")

	// ErrNoHeartbeat is returned by [Client.Ping] when the kernel did not
	// echo a heartbeat in time.
	ErrNoHeartbeat = errors.New("kernel: no heartbeat")

	// ErrBadConnectionFile is returned by [ReadConnectionFile] for a file
	// that is not a usable connection file.
	ErrBadConnectionFile = errors.New("kernel: bad connection file")
)
