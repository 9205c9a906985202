package worker

import (
	"context"

	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/tasks"
)

// SAP is what the worker needs of an SAP system: to send a posting's
// request and to look for the document it made. *sap.Client implements it;
// a kind's request (sap.NewRequest) carries what is particular to it, so
// that adding a posting kind adds nothing here.
type SAP interface {
	Post(ctx context.Context, r sap.Request, s sap.Send) (sap.Document, error)
	Find(ctx context.Context, r sap.Request, reference string) (sap.Match, error)
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

// newCall builds the call of a job with its reference.
func newCall(s SAP, job tasks.Job, reference string) (call, error) {
	p, err := job.Posting()
	if err != nil {
		return call{}, err
	}
	r, err := sap.NewRequest(p)
	if err != nil {
		return call{}, err
	}
	return call{
		post: func(ctx context.Context, messageUUID string) (sap.Document, error) {
			return s.Post(ctx, r, sap.Send{Reference: reference, MessageUUID: messageUUID})
		},
		find:    func(ctx context.Context) (sap.Match, error) { return s.Find(ctx, r, reference) },
		objects: p.Facts().Objects,
	}, nil
}
