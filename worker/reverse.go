package worker

import (
	"context"

	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
)

// maxReversalPages bounds how many pages of the caller's reversal jobs
// otherReversal reads.
const maxReversalPages = 20

// otherReversal names another job of the caller, under another
// idempotency key, that reverses the same original as this reversal job
// and may have sent its call (any status but cancelled and rejected: a
// failed one may have failed after its call went out), or "" if the
// ledger holds none. It tells a supplier invoice's reversal, which carries
// nothing of the job that made it, from another job's when no call of this
// job went out. It is "" for jobs that are not reversals.
func (a *attempt) otherReversal(ctx context.Context) (string, error) {
	p, err := a.job.Posting()
	rp, ok := p.(*tasks.ReversePosting)
	if err != nil || !ok || rp.Original == nil {
		return "", err
	}
	cursor := ""
	for range maxReversalPages {
		page, err := a.w.ledger.List(ctx, a.job.Caller, ledger.ListFilter{Kind: tasks.KindReversePosting, Limit: 100, Cursor: cursor})
		if err != nil {
			return "", err
		}
		for _, job := range page.Jobs {
			if job.ID == a.job.ID || job.IdempotencyKey == a.job.IdempotencyKey ||
				job.Status == tasks.StatusCancelled || job.Status == tasks.StatusRejected {
				continue
			}
			p, err := job.Posting()
			other, ok := p.(*tasks.ReversePosting)
			if err == nil && ok && other.Original != nil && other.Original.Same(*rp.Original) {
				return job.ID, nil
			}
		}
		if page.NextCursor == "" {
			return "", nil
		}
		cursor = page.NextCursor
	}
	return "", nil
}
