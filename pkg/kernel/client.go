package kernel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"sync"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/hashicorp/go-hclog"
)

// Defaults for [Options].
const (
	DefaultDialTimeout = 10 * time.Second
	DefaultSendTimeout = 10 * time.Second
)

// Options configure [Dial]. Zero fields mean the defaults.
type Options struct {
	// Logger receives dropped messages (bad signatures) and socket errors.
	// Default: a null logger.
	Logger hclog.Logger
	// SendTimeout bounds each send on a socket. Default DefaultSendTimeout.
	SendTimeout time.Duration
}

// OutputKind names an iopub output message type.
type OutputKind string

// Output kinds.
const (
	OutputStream  OutputKind = "stream"         // text on stdout or stderr
	OutputResult  OutputKind = "execute_result" // the value of the last expression
	OutputDisplay OutputKind = "display_data"   // something displayed
	OutputError   OutputKind = "error"          // an exception
)

// Output is one output of an execution, as published on iopub.
type Output struct {
	Kind OutputKind `json:"kind"`
	// Name is the stream ("stdout" or "stderr") of a stream output.
	Name string `json:"name,omitempty"`
	// Text is a stream's text, or the text/plain form of a result or
	// display.
	Text string `json:"text,omitempty"`
	// ExecutionCount is set on a result.
	ExecutionCount int `json:"execution_count,omitempty"`
	// EName, EValue and Traceback describe an error.
	EName     string   `json:"ename,omitempty"`
	EValue    string   `json:"evalue,omitempty"`
	Traceback []string `json:"traceback,omitempty"`
}

// ExecuteRequest is the content of an execute_request.
type ExecuteRequest struct {
	Code string `json:"code"`
	// Silent runs without broadcasting outputs or counting the execution.
	Silent bool `json:"silent"`
	// StoreHistory adds the code to the kernel's history (In/Out) and
	// counts the execution.
	StoreHistory bool `json:"store_history"`
}

// Reply is an execute_reply.
type Reply struct {
	Status         string   `json:"status"` // "ok", "error" or "aborted"
	ExecutionCount int      `json:"execution_count"`
	EName          string   `json:"ename,omitempty"`
	EValue         string   `json:"evalue,omitempty"`
	Traceback      []string `json:"traceback,omitempty"`
}

// Client is a connection to one kernel: shell, control and heartbeat
// DEALER sockets and an iopub SUB socket, each read by its own goroutine.
// See the package doc.
type Client struct {
	signer  *Signer
	session string
	opts    Options
	log     hclog.Logger

	shell, control, iopub, hb zmq4.Socket
	cancel                    context.CancelFunc

	mu    sync.Mutex
	calls map[string]*call
	pings map[string]chan struct{}
	done  chan struct{} // closed by fail
	err   error
	wg    sync.WaitGroup
}

// call is one request in flight.
type call struct {
	reply    chan *Message // buffered 1: the shell or control reply
	idle     chan struct{} // closed on iopub status idle
	idleOnce sync.Once
	output   func(*Message)
}

// Dial connects to the kernel of info and returns once every socket is
// connected (the kernel's ports accept). It retries refused connections
// until ctx ends: a kernel that is starting binds its ports a moment after
// its process starts. Call [Client.Ready] before the first request.
func Dial(ctx context.Context, info ConnectionInfo, opts *Options) (*Client, error) {
	if err := info.Validate(); err != nil {
		return nil, fmt.Errorf("dial kernel: %w", err)
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = DefaultSendTimeout
	}
	sctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, cancel) // abort the dial retries
	defer stop()
	sockOpts := []zmq4.Option{
		zmq4.WithLogger(log.New(io.Discard, "", 0)),
		zmq4.WithDialerRetry(50 * time.Millisecond),
		zmq4.WithDialerMaxRetries(-1),
		zmq4.WithDialerTimeout(DefaultDialTimeout),
		zmq4.WithTimeout(o.SendTimeout),
	}
	c := &Client{
		signer: NewSigner(info.Key), session: newID(), opts: o, log: o.Logger, cancel: cancel,
		shell: zmq4.NewDealer(sctx, sockOpts...), control: zmq4.NewDealer(sctx, sockOpts...),
		iopub: zmq4.NewSub(sctx, sockOpts...), hb: zmq4.NewDealer(sctx, sockOpts...),
		calls: map[string]*call{}, pings: map[string]chan struct{}{}, done: make(chan struct{}),
	}
	if err := c.iopub.SetOption(zmq4.OptionSubscribe, ""); err != nil {
		c.closeSockets()
		return nil, fmt.Errorf("dial kernel: subscribe iopub: %w", err)
	}
	for _, d := range []struct {
		s    zmq4.Socket
		port int
		name string
	}{{c.shell, info.ShellPort, "shell"}, {c.control, info.ControlPort, "control"}, {c.iopub, info.IOPubPort, "iopub"}, {c.hb, info.HBPort, "heartbeat"}} {
		if err := d.s.Dial(info.endpoint(d.port)); err != nil {
			c.closeSockets()
			if ctx.Err() != nil {
				return nil, fmt.Errorf("dial kernel %s: %w", d.name, ctx.Err())
			}
			return nil, fmt.Errorf("dial kernel %s: %w", d.name, err)
		}
	}
	if !stop() {
		c.closeSockets()
		return nil, fmt.Errorf("dial kernel: %w", ctx.Err())
	}
	c.wg.Add(4)
	go c.readReplies(c.shell, "shell")
	go c.readReplies(c.control, "control")
	go c.readIOPub()
	go c.readHeartbeats()
	return c, nil
}

func (c *Client) closeSockets() {
	c.cancel()
	for _, s := range []zmq4.Socket{c.shell, c.control, c.iopub, c.hb} {
		s.Close()
	}
}

// Close closes the sockets and fails every call in flight with
// [ErrClosed]. The kernel keeps running. Close is idempotent.
func (c *Client) Close() error {
	c.fail(ErrClosed)
	c.closeSockets()
	c.wg.Wait()
	return nil
}

// Done is closed when the client can no longer be used: closed, or a
// socket broke ([Client.Err] says which).
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the client stopped: [ErrClosed] or an error wrapping
// [ErrDisconnected]; nil while it works.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	close(c.done)
}

// readReplies routes replies on shell or control to their calls.
func (c *Client) readReplies(s zmq4.Socket, name string) {
	defer c.wg.Done()
	for {
		m, ok := c.recv(s, name)
		if !ok {
			return
		}
		if m == nil {
			continue
		}
		c.mu.Lock()
		cl := c.calls[m.Parent.MsgID]
		c.mu.Unlock()
		if cl == nil {
			continue // a reply to a call given up on, or to another client
		}
		select {
		case cl.reply <- m:
		default:
		}
	}
}

// readIOPub hands iopub messages to the call they answer.
func (c *Client) readIOPub() {
	defer c.wg.Done()
	for {
		m, ok := c.recv(c.iopub, "iopub")
		if !ok {
			return
		}
		if m == nil {
			continue
		}
		c.mu.Lock()
		cl := c.calls[m.Parent.MsgID]
		c.mu.Unlock()
		if cl == nil {
			continue
		}
		if cl.output != nil {
			cl.output(m)
		}
		if m.Header.MsgType == "status" {
			var st struct {
				State string `json:"execution_state"`
			}
			if json.Unmarshal(m.Content, &st) == nil && st.State == "idle" {
				cl.idleOnce.Do(func() { close(cl.idle) })
			}
		}
	}
}

// recv reads one message: (nil, true) for one that was dropped (bad
// signature, malformed), (nil, false) when the socket is done.
func (c *Client) recv(s zmq4.Socket, name string) (*Message, bool) {
	raw, err := s.Recv()
	if err != nil {
		if c.Err() == nil {
			c.fail(fmt.Errorf("%w: %s: %w", ErrDisconnected, name, err))
		}
		return nil, false
	}
	m, err := c.signer.Decode(raw.Frames)
	if err != nil {
		c.log.Warn("dropping kernel message", "socket", name, "error", err)
		return nil, true
	}
	return m, true
}

// readHeartbeats wakes the pings whose echo came back.
func (c *Client) readHeartbeats() {
	defer c.wg.Done()
	for {
		raw, err := c.hb.Recv()
		if err != nil {
			if c.Err() == nil {
				c.fail(fmt.Errorf("%w: heartbeat: %w", ErrDisconnected, err))
			}
			return
		}
		if len(raw.Frames) == 0 {
			continue
		}
		c.mu.Lock()
		if ch, ok := c.pings[string(raw.Frames[len(raw.Frames)-1])]; ok {
			close(ch)
			delete(c.pings, string(raw.Frames[len(raw.Frames)-1]))
		}
		c.mu.Unlock()
	}
}

// Ping sends one heartbeat and returns once the kernel echoes it, or
// [ErrNoHeartbeat] if it does not within timeout.
func (c *Client) Ping(ctx context.Context, timeout time.Duration) error {
	id := newID()
	ch := make(chan struct{})
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	c.pings[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pings, id)
		c.mu.Unlock()
	}()
	if err := c.hb.Send(zmq4.NewMsg([]byte(id))); err != nil {
		return fmt.Errorf("%w: send: %w", ErrNoHeartbeat, err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-t.C:
		return fmt.Errorf("%w within %v", ErrNoHeartbeat, timeout)
	case <-c.done:
		return c.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// request sends m on s and waits for its reply and, with waitIdle, for the
// kernel to publish that it is idle again after it (so that every output
// of the request has been handed to output).
func (c *Client) request(ctx context.Context, s zmq4.Socket, m *Message, waitIdle bool, output func(*Message)) (*Message, error) {
	cl := &call{reply: make(chan *Message, 1), idle: make(chan struct{}), output: output}
	id := m.Header.MsgID
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	c.calls[id] = cl
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.calls, id)
		c.mu.Unlock()
	}()
	frames, err := c.signer.Encode(m)
	if err != nil {
		return nil, err
	}
	if err := s.Send(zmq4.NewMsgFrom(frames...)); err != nil {
		return nil, fmt.Errorf("send %s: %w", m.Header.MsgType, err)
	}
	var reply *Message
	idle := cl.idle
	if !waitIdle {
		idle = nil
	}
	for reply == nil || idle != nil {
		select {
		case reply = <-cl.reply:
			cl.reply = nil
		case <-idle:
			idle = nil
		case <-c.done:
			return nil, c.Err()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return reply, nil
}

// Ready returns once the kernel answers and the iopub subscription is
// known to be in place: it sends kernel_info_request until one is answered
// and its status messages arrive on iopub. The request goes on control, not
// shell, so that a kernel still busy with an execution (one that a previous
// client started) answers at once. Call it after [Dial]; it is cheap to
// call again.
func (c *Client) Ready(ctx context.Context) error {
	for {
		m, err := NewMessage(c.session, "kernel_info_request", struct{}{})
		if err != nil {
			return err
		}
		try, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		_, err = c.request(try, c.control, m, true, nil)
		cancel()
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return fmt.Errorf("kernel not ready: %w", ctx.Err())
		case !errors.Is(err, context.DeadlineExceeded):
			return fmt.Errorf("kernel not ready: %w", err)
		}
	}
}

// Execute runs req on the kernel and returns its reply once the kernel is
// idle again, every output having been passed to out (which may be nil) in
// order. A reply with status "error" is not an error of Execute: the code
// raised. Errors mean the outcome is unknown: ctx ended (the code may
// still run: interrupt it), or the connection broke.
func (c *Client) Execute(ctx context.Context, req ExecuteRequest, out func(Output)) (Reply, error) {
	content := struct {
		ExecuteRequest
		UserExpressions struct{} `json:"user_expressions"`
		AllowStdin      bool     `json:"allow_stdin"`
		StopOnError     bool     `json:"stop_on_error"`
	}{ExecuteRequest: req}
	m, err := NewMessage(c.session, "execute_request", content)
	if err != nil {
		return Reply{}, err
	}
	var output func(*Message)
	if out != nil {
		output = func(m *Message) {
			if o, ok := decodeOutput(m); ok {
				out(o)
			}
		}
	}
	rm, err := c.request(ctx, c.shell, m, true, output)
	if err != nil {
		return Reply{}, fmt.Errorf("execute: %w", err)
	}
	var r Reply
	if err := json.Unmarshal(rm.Content, &r); err != nil {
		return Reply{}, fmt.Errorf("execute: %w: reply: %w", ErrMalformed, err)
	}
	return r, nil
}

// decodeOutput turns an iopub message into an Output, if it is one.
func decodeOutput(m *Message) (Output, bool) {
	var c struct {
		Name           string            `json:"name"`
		Text           string            `json:"text"`
		Data           map[string]any    `json:"data"`
		ExecutionCount int               `json:"execution_count"`
		EName          string            `json:"ename"`
		EValue         string            `json:"evalue"`
		Traceback      []string          `json:"traceback"`
		Metadata       map[string]string `json:"-"`
	}
	kind := OutputKind(m.Header.MsgType)
	switch kind {
	case OutputStream, OutputResult, OutputDisplay, OutputError:
	default:
		return Output{}, false
	}
	if err := json.Unmarshal(m.Content, &c); err != nil {
		return Output{}, false
	}
	o := Output{Kind: kind, Name: c.Name, Text: c.Text, ExecutionCount: c.ExecutionCount, EName: c.EName, EValue: c.EValue, Traceback: c.Traceback}
	if kind == OutputResult || kind == OutputDisplay {
		if s, ok := c.Data["text/plain"].(string); ok {
			o.Text = s
		}
	}
	return o, true
}

// Interrupt asks the kernel to interrupt what it runs (interrupt_request
// on control; ipykernel sends SIGINT to its own process group) and returns
// once it acknowledged. An idle kernel ignores it.
func (c *Client) Interrupt(ctx context.Context) error {
	m, err := NewMessage(c.session, "interrupt_request", struct{}{})
	if err != nil {
		return err
	}
	if _, err := c.request(ctx, c.control, m, false, nil); err != nil {
		return fmt.Errorf("interrupt: %w", err)
	}
	return nil
}

// Shutdown asks the kernel to exit (shutdown_request on control) and
// returns once it acknowledged.
func (c *Client) Shutdown(ctx context.Context) error {
	m, err := NewMessage(c.session, "shutdown_request", map[string]bool{"restart": false})
	if err != nil {
		return err
	}
	if _, err := c.request(ctx, c.control, m, false, nil); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
