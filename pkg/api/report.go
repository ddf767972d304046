package api

import (
	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/wire"
	"github.com/solo-rt/solo/recovery"
)

// The reports of the layers below the runtime keep their own types, which
// know nothing of the API: these functions are where they become the wire
// types the API sends. Where the two shapes are identical the conversion is
// a Go conversion, which stops compiling if either side gains a field the
// other lacks; the rest is checked by a test (report_internal_test.go).

// checkReport is the wire form of a database check.
func checkReport(r eventstore.CheckReport) wire.CheckReport { return wire.CheckReport(r) }

// recoverItems is the wire form of a recover's items (nil for nil, as the
// JSON tells them apart).
func recoverItems(items []recovery.RecoverItem) []wire.RecoverItem {
	if items == nil {
		return nil
	}
	out := make([]wire.RecoverItem, 0, len(items))
	for _, it := range items {
		out = append(out, wire.RecoverItem(it))
	}
	return out
}

// verifyReport is the wire form of a verify (Findings nil for nil).
func verifyReport(r recovery.VerifyReport) wire.VerifyReport {
	out := wire.VerifyReport{Clean: r.Clean}
	if r.Findings != nil {
		out.Findings = make([]wire.Finding, 0, len(r.Findings))
	}
	for _, f := range r.Findings {
		out.Findings = append(out.Findings, wire.Finding{
			Kind: f.Kind, Tenant: f.Tenant, Name: f.Name, PID: f.PID, Detail: f.Detail, Fixed: f.Fixed,
		})
	}
	return out
}
