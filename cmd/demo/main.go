// Command demo stands DocSpace IP Guard up on this machine and tells its
// story with the real functions: both bootstraps run under the Lambda
// Runtime Interface Emulator against moto (DynamoDB, SNS, SQS, Secrets
// Manager) and the dev DocSpace portal. Run it with `make demo`.
//
// It exits non-zero when any step does not behave as it says, and stops
// everything it started, also on failure and on Ctrl-C.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Stdout)
	interrupted := ctx.Err() != nil // before stop(), which cancels ctx too
	stop()
	if err != nil {
		if interrupted { // Ctrl-C: whatever failed, failed because of it
			err = errors.New("interrupted; everything it started has been stopped")
		}
		fmt.Fprintf(os.Stderr, "\ndemo failed: %v\n", err)
		os.Exit(1)
	}
}
