package wire

import "time"

// SecretSetRequest is the body of PUT /v1/secrets/{tenant}/{name}.
type SecretSetRequest struct {
	// Value is the secret (base64 in JSON): 1 byte to 64 KiB.
	Value []byte `json:"value"`
	// RestartUsers restarts the tenant's services whose specs use the
	// secret, so that they take the new value now.
	RestartUsers bool `json:"restart_users,omitempty"`
}

// SecretView describes a secret. It never holds the value.
type SecretView struct {
	Tenant  string    `json:"tenant"`
	Name    string    `json:"name"`
	Version uint64    `json:"version"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// SecretSetReply is the reply of PUT /v1/secrets/{tenant}/{name}: the new
// version, the services that use the secret and those restarted.
type SecretSetReply struct {
	Secret    SecretView `json:"secret"`
	Users     []string   `json:"users"`
	Restarted []string   `json:"restarted"`
}
