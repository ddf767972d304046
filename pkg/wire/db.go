package wire

// CheckReport is the reply of GET /v1/db/check: a summary of a clean
// check of the event log. A damaged log answers an [ErrorBody] with code
// [CodeCorrupt] and the findings in Problems instead.
//
// Its keys are capitalised ("Events"), as the API has always sent them.
type CheckReport struct {
	Events    uint64 `json:"Events"`    // events in the log
	Streams   uint64 `json:"Streams"`   // distinct (tenant, subject) streams
	Snapshots int    `json:"Snapshots"` // snapshots kept
}
