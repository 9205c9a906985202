package sim

import (
	"fmt"
	"slices"
	"time"
)

// Posting periods follow the clock, as a typical period-end close leaves
// them: the month of Now and the month before are open, every other month
// is closed (message F5/201). Finance can open another month, as an
// accountant does with transaction OB52: Options.OpenPeriods at start, or
// OpenPeriod (POST /sim/periods) while the simulator runs, so that a
// document dated in a month that has closed since it was written can still
// be posted.

// periodOpen reports whether postings into the month of date are allowed.
// Callers hold s.mu.
func (s *Server) periodOpen(date time.Time) bool {
	now := s.opts.Now().UTC()
	cur := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	prev := cur.AddDate(0, -1, 0)
	month := time.Date(date.Year(), date.Month(), 1, 0, 0, 0, 0, time.UTC)
	return month.Equal(cur) || month.Equal(prev) || slices.Contains(s.books.openPeriods, month.Format(periodLayout))
}

// periodLayout names a posting period: "2026-11".
const periodLayout = "2006-01"

// OpenPeriod opens the posting period of a month ("2026-11") for postings.
func (s *Server) OpenPeriod(month string) error {
	if _, err := time.Parse(periodLayout, month); err != nil {
		return fmt.Errorf("sim: period %q is not a month such as 2026-11", month)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.books.openPeriods, month) {
		s.books.openPeriods = append(s.books.openPeriods, month)
	}
	s.log.Info("sim: posting period opened", "period", month)
	return nil
}
