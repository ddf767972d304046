package api

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/capability"
	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/wire"
	"github.com/solo-rt/solo/recovery"
)

// fill sets every exported field of the value v points to, recursively, to
// a value that is not zero, with one element in each slice: a field that a
// conversion drops, or that one side has and the other lacks, then shows
// in the JSON.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(v.Elem())
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.String:
		v.SetString("x-" + v.Type().Name())
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(9)
	default:
		panic("fill: add a case for " + v.Kind().String())
	}
}

func filled[T any]() T {
	var v T
	fill(reflect.ValueOf(&v))
	return v
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// TestReports_WireForm checks that the reports of the layers below the
// runtime, converted at the boundary, are sent exactly as they encode
// themselves: nothing dropped, nothing added, nil and empty kept apart.
func TestReports_WireForm(t *testing.T) {
	cases := []struct {
		name       string
		have, sent func() (any, any)
	}{
		{name: "check report", have: func() (any, any) {
			r := filled[eventstore.CheckReport]()
			return r, checkReport(r)
		}},
		{name: "empty check report", have: func() (any, any) {
			return eventstore.CheckReport{}, checkReport(eventstore.CheckReport{})
		}},
		{name: "recover items", have: func() (any, any) {
			items := []recovery.RecoverItem{filled[recovery.RecoverItem](), {Tenant: "a", Name: "b"}}
			return items, recoverItems(items)
		}},
		{name: "no recover items", have: func() (any, any) {
			return []recovery.RecoverItem{}, recoverItems([]recovery.RecoverItem{})
		}},
		{name: "nil recover items", have: func() (any, any) {
			return []recovery.RecoverItem(nil), recoverItems(nil)
		}},
		{name: "verify report", have: func() (any, any) {
			r := filled[recovery.VerifyReport]()
			return r, verifyReport(r)
		}},
		{name: "clean verify report", have: func() (any, any) {
			r := recovery.VerifyReport{Findings: []recovery.Finding{}, Clean: true}
			return r, verifyReport(r)
		}},
		{name: "zero verify report", have: func() (any, any) {
			return recovery.VerifyReport{}, verifyReport(recovery.VerifyReport{})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			have, sent := c.have()
			want := mustJSON(t, have)
			assert.Equal(t, want, mustJSON(t, sent))
			// And the wire type reads back what the producer wrote, with
			// no field it does not know.
			back := reflect.New(reflect.TypeOf(sent))
			dec := json.NewDecoder(strings.NewReader(want))
			dec.DisallowUnknownFields()
			require.NoError(t, dec.Decode(back.Interface()))
			assert.Equal(t, want, mustJSON(t, back.Elem().Interface()))
		})
	}
}

// TestTokenPrefix_Wire keeps the client's way of recognising a plaintext
// token equal to the token store's format.
func TestTokenPrefix_Wire(t *testing.T) {
	assert.Equal(t, capability.Prefix, wire.TokenPrefix)
}
