package worker

import (
	"context"

	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/tasks"
)

// SAP is what the worker needs of the SAP systems it posts to: which one
// (destination) a posting goes to, and in that one to send a posting's
// request and to look for the document it made. *sap.Destinations
// implements it; a kind's request (sap.NewRequest) carries what is
// particular to it, so that adding a posting kind adds nothing here.
type SAP interface {
	// Route names the destination of a posting no call has been sent for
	// yet; a job keeps the destination of its first call for good.
	Route(p tasks.Posting) (destination string, err error)
	Post(ctx context.Context, destination string, r sap.Request, s sap.Send) (sap.Document, error)
	Find(ctx context.Context, destination string, r sap.Request, reference string) (sap.Match, error)
}

// call is one job's request to SAP, built before anything is recorded as
// sent, so that a job that cannot be turned into a request fails without
// SAP ever being called. Both halves carry the posting's SAP-side identity:
// find looks for the document by its reference, post writes the reference
// into SAP and sends the message UUID of the given generation.
type call struct {
	post func(ctx context.Context, messageUUID string) (sap.Document, error)
	find func(ctx context.Context) (sap.Match, error)
	// objects are the SAP objects the posting changes (tasks.Facts), which
	// no other job's call may change at the same time.
	objects []string
}

// newCall builds the call of a posting to destination with its reference.
func newCall(s SAP, p tasks.Posting, destination, reference string) (call, error) {
	r, err := sap.NewRequest(p)
	if err != nil {
		return call{}, err
	}
	return call{
		post: func(ctx context.Context, messageUUID string) (sap.Document, error) {
			return s.Post(ctx, destination, r, sap.Send{Reference: reference, MessageUUID: messageUUID})
		},
		find:    func(ctx context.Context) (sap.Match, error) { return s.Find(ctx, destination, r, reference) },
		objects: p.Facts().Objects,
	}, nil
}
