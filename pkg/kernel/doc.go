// Package kernel speaks the Jupyter messaging protocol (version 5.3) to one
// running kernel, such as ipykernel, over ZeroMQ.
//
// It owns:
//   - connection files ([ConnectionInfo], [NewConnectionInfo],
//     [WriteConnectionFile], [ReadConnectionFile], [WaitConnectionFile]):
//     the HMAC key a kernel is started with, written atomically with mode
//     0600, its ports 0; the kernel binds ports of its own choosing and
//     writes them back into the file, and [WaitConnectionFile] waits for
//     that (a port picked by one process and bound later by another could
//     be taken in between);
//   - the wire format of a message and its HMAC-SHA256 signature
//     ([Message], [Signer]): a message whose signature does not verify is
//     refused ([ErrBadSignature]) before any of it is decoded;
//   - a [Client] on the kernel's five sockets: execute requests on shell
//     with their outputs from iopub ([Client.Execute]), interrupts on
//     control ([Client.Interrupt]), and heartbeats ([Client.Ping]).
//
// It never starts or stops a kernel process: that is the supervisor's job
// (a kernel is a Solo service). It keeps no state across connections, so a
// new [Client] can be dialled to a kernel that survived its previous one.
//
// # Usage
//
//	info, err := kernel.WaitConnectionFile(ctx, path) // the kernel's ports
//	c, err := kernel.Dial(ctx, info, nil)
//	if err != nil { ... }
//	defer c.Close()
//	if err := c.Ready(ctx); err != nil { ... } // iopub is subscribed
//	res, err := c.Execute(ctx, "1+1", func(o kernel.Output) { ... })
//
// # Concurrency
//
// A [Client] is safe for concurrent use. The output callback of
// [Client.Execute] is called from the client's one iopub reader goroutine,
// in the kernel's order; it must not block (append to a buffer and return),
// or it holds up every other request's outputs.
//
// # Caveats
//
//   - ZeroMQ PUB/SUB drops messages published before the subscription
//     reaches the kernel: call [Client.Ready] after [Dial] and before the
//     first Execute, or its first outputs may be lost.
//   - The heartbeat proves the kernel's heartbeat thread runs, not that its
//     main thread is free: a kernel busy in a long computation still
//     answers pings.
package kernel
