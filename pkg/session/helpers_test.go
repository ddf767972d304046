package session

import "github.com/solo-rt/solo/pkg/state"

func stream(s string) state.TaskOutput {
	return state.TaskOutput{Kind: "stream", Name: "stdout", Text: s}
}
func resultOut(s string) state.TaskOutput { return state.TaskOutput{Kind: "execute_result", Text: s} }
