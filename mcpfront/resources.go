package mcpfront

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/sapq/sapq/tasks/ledger"
)

// postingURIPrefix + job ID names a posting as a resource, for clients that
// attach resources to a conversation rather than call tools.
const postingURIPrefix = "sapq://postings/"

func (s *Server) registerResources() {
	s.mcp.AddResourceTemplate(
		mcp.NewResourceTemplate(postingURIPrefix+"{job_id}", "posting",
			mcp.WithTemplateTitle("Posting"),
			mcp.WithTemplateDescription("One of your postings as JSON, the same document get_posting returns."),
			mcp.WithTemplateMIMEType("application/json"),
		),
		s.readPosting,
	)
}

func (s *Server) readPosting(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	caller, ok := CallerFromContext(ctx)
	if !ok {
		return nil, errors.New(unauthenticatedMessage)
	}
	if !caller.Has(ScopeRead) {
		return nil, fmt.Errorf("you may not read postings (scope %s)", ScopeRead)
	}
	id, _ := req.Params.Arguments["job_id"].(string)
	if id == "" {
		// Some template matchers hand over a list for a single variable.
		if l, ok := req.Params.Arguments["job_id"].([]string); ok && len(l) == 1 {
			id = l[0]
		}
	}
	if id == "" || len(id) > maxJobIDLen {
		return nil, fmt.Errorf("%s is not a posting URI; use %s<job_id>", req.Params.URI, postingURIPrefix)
	}
	job, err := s.ledger.Get(ctx, caller.Name, id)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, fmt.Errorf("you have no posting with job_id %q", id)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "resource read failed", "uri", req.Params.URI, "caller", caller.Name, "err", err)
		return nil, errors.New("internal error; try again")
	}
	body, err := json.Marshal(postingOf(job))
	if err != nil {
		return nil, err
	}
	return []mcp.ResourceContents{mcp.TextResourceContents{
		URI:      req.Params.URI,
		MIMEType: "application/json",
		Text:     string(body),
	}}, nil
}
