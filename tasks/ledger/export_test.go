package ledger

// OverlayQueueState lets tests drive the race between a reader and a
// finishing handler step by step.
var OverlayQueueState = (*Ledger).overlayQueueState
