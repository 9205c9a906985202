/*
 * exactlyonce.pml: a Promela model of sapq's exactly-once posting protocol
 * (design/protocol.md, version 2, with the fixes this model found), checked
 * with spin by check.sh in this directory.
 *
 * RULE: when the protocol in worker/ or tasks/ledger/ changes, this model
 * must change with it, and `bash worker/model/check.sh` must pass again.
 *
 * ---------------------------------------------------------------------------
 * What is modelled, and which Go code each part stands for
 * ---------------------------------------------------------------------------
 * One caller and one idempotency key, so one SAP reference: every job of the
 * key (a job the ledger forgot and a fresh one the agent resubmitted) posts
 * under the same reference and, for journal entries, the same MessageHeader
 * UUIDs (uuid(reference + "/" + generation), tasks.Identity.MessageUUID).
 *
 *   proctype Worker     one asynq handler goroutine, looping over deliveries:
 *                       worker.(*Worker).ProcessTask, worker.(*Worker).claim,
 *                       worker.(*attempt).run / reconcile / succeed / fail /
 *                       retry / recordFailure. Each ledger step below is one
 *                       atomic Redis script (one atomic{} block here):
 *       Claim           ledger.Claim (claimScript)                 step 2
 *       settle waits    attempt.awaitSettling, loss window         step 3
 *       look-up         call.find = sap FindJournalEntry /
 *                       FindSupplierInvoice (by reference)         step 4
 *       BeginSend       ledger.BeginSend (beginSendScript)         step 5
 *       post            call.post = sap PostJournalEntry /
 *                       PostSupplierInvoice                        step 6
 *       record          ledger.RecordPosted / RecordFailure
 *                       (finishScript), fenced                     step 7
 *   proctype Agent      the MCP caller: tasks Submit (ledger.Submit,
 *                       submitScript), get_posting polls, resubmission of
 *                       the same key after not_found, ledger.Cancel
 *                       (cancelScript)                             steps 1, 8
 *   proctype Env        Redis losing its last writes (rollback to a snapshot)
 *                       or being wiped, loss detection and the sweeper; the
 *                       retention expiry of a finished job; an operator's
 *                       ledger.Reprocess (reprocessScript)         step 9
 *   proctype Sap        SAP processing the calls that reached it: the document
 *                       store by reference, the SOAP UUID replay store
 *                       (KIND == JE), the M8/108 duplicate-invoice check
 *                       (KIND == SI), or no de-duplication at all (KIND ==
 *                       NODEDUP: goods movements, sales orders)
 *   proctype Endgame    whenever the system is quiet (nothing queued, no
 *                       delivery or call under way): the operator reprocesses
 *                       a stranded job or one whose outcome is unknown; if
 *                       there is none, it checks the end state (NOTHING LOST).
 *   The asynq queue     chan q: tasks {job, run, retry count}. Deliveries are
 *                       at least once: a crash or a retry puts the task back,
 *                       a lease expiry delivers it a second time while the
 *                       first delivery still runs (budget DUPS), and a task
 *                       may sit in the queue until after the job failed or
 *                       was reprocessed (a stale delivery with an old run).
 *                       A task's last delivery (retry count = MAXRETRY)
 *                       records "failed" instead of "retrying"; a crash of the
 *                       last delivery leaves the job stranded (asynq archives
 *                       the task).
 *
 * Time is not modelled with a clock. `tick` counts BeginSends (and, in the
 * BUG_DEADLINE_AFTER_BEGINSEND mutant, loss detections); a call is
 * stamped with the tick of its BeginSend (send_started). "Wait until
 * send_started + ReconcileAfter" (and "until lossAt + ReconcileAfter") is the
 * settle(S) step: it can happen only once SAP has finished every call stamped
 * <= S that reached it, and it makes every call stamped <= S that has not
 * reached SAP yet unable to reach it (its deadline has passed, see FIX 1).
 * That is the design's assumption "SAP finishes any request within
 * ReconcileAfter", made exact.
 *
 * Environment behaviour (all nondeterministic, bounded by the budgets below):
 *   - a worker crashes between any two steps (CRASH), including while SAP
 *     processes its call and after SAP committed but before the record;
 *   - duplicate deliveries (lease expiry) and stale ones (old run, job failed);
 *   - SAP: commit, transient / permanent refusal, a permanent SAP code inside
 *     an HTTP 500 (treated as unknown), a lost response, a client timeout with
 *     SAP committing later (slow commit), a failed look-up (SAP unreadable);
 *   - Redis loses its last writes: the ledger returns to a snapshot taken at a
 *     nondeterministic earlier point, or is wiped; the loss is detected and
 *     opens the loss window;
 *   - a finished job expires (retention); the agent resubmits its key when its
 *     job is gone (not_found), which creates a fresh job, same reference;
 *   - an operator reprocesses a failed job; the agent cancels.
 *
 * Properties (assertions; spin also reports invalid end states, i.e. a
 * process stuck for ever):
 *   NO DUPLICATE   SAP never holds two documents for the reference.
 *   NO LIE         the ledger never records "failed, nothing posted" (failed
 *                  with phase pending) or "cancelled" while SAP holds a
 *                  document; SAP never commits one while the ledger says
 *                  cancelled, or after the agent was told the job is
 *                  cancelled, or failed with nothing posted (unless an
 *                  operator reprocessed it or the agent resubmitted since).
 *   NOTHING LOST   whenever the system is quiet (Endgame): the key's job is
 *                  succeeded with SAP's one document, or failed with nothing
 *                  posted / cancelled and SAP holds no document; if the ledger
 *                  no longer has the job, what the agent last read agrees
 *                  with SAP.
 *   INVARIANT      (-DINVARIANT) protocol.md's invariant itself: when a post
 *                  reaches SAP, SAP holds no document under the reference and
 *                  no other call is still being processed. With it, SAP's own
 *                  de-duplication (M8/108, the UUID) is never needed.
 *
 * ---------------------------------------------------------------------------
 * Fixes to protocol.md v2 that this model found. The model is the fixed
 * protocol; each fix has a mutant switch that removes it, and check.sh
 * expects spin to find a violation in every mutant.
 * ---------------------------------------------------------------------------
 * FIX 1 (BUG_DEADLINE_AFTER_BEGINSEND) The call's deadline runs from before
 *   BeginSend, not from the post: a worker that stalls between BeginSend and
 *   the post (GC pause, the loss-window re-check's Redis round trip, a frozen
 *   VM) must not send once send_started + SAPTimeout has passed, or its call
 *   reaches SAP after another delivery's settle wait already ended, and that
 *   delivery's look-up misses it. ReconcileAfter >= SAPTimeout + SAP's
 *   processing bound. In the code: handler.go's callCtx deadline counts
 *   from before BeginSend.
 * FIX 2 (BUG_RECORD_AFTER_LOSS) A delivery that claimed before a detected
 *   loss records no failure after it (only a document SAP returned): after the
 *   rollback its fence (attempts) can match again, and a refusal it got before
 *   the loss overwrites a later delivery's "sending" with "pending" or
 *   "failed, nothing posted" while that delivery's call posts.
 * FIX 3 (BUG_NO_SUSPECT) On a detected loss every job that is not succeeded or
 *   cancelled becomes phase sending ("a forgotten call may have posted it"),
 *   before anyone reads or cancels it: a rolled-back "failed, nothing posted"
 *   may have been reprocessed and sent in the lost writes.
 * FIX 4 (BUG_NEW_JOB_PENDING) Submit creates a job in phase sending with no
 *   send_started ("unverified"): SAP may hold a document under the reference
 *   from a job the ledger forgot (Redis loss, or retention expiry before the
 *   agent resubmitted). Only a look-up proves nothing is there; until then
 *   the job must not read "nothing posted" (a failed look-up on the last
 *   attempt would record exactly that) and must not be cancelled unseen.
 *   In the code the ledger stores phase pending with attempts 0 and every
 *   reader treats attempts 0 as this model's unverified SENDING:
 *   handler.go mayHoldPhase (a failed look-up or an exhausted last attempt
 *   records phase sending, outcome unknown), ledger.Cancel (FIX 5). These
 *   and createJob change together. Not modelled: a job that cannot be
 *   routed or built fails "pending" without a look-up (handler.go
 *   unsendable).
 * FIX 5 (BUG_CANCEL_NO_LOOKUP) Cancel of a job never sent (attempts = 0,
 *   unverified) waits out any loss window, looks SAP up, and cancels only if
 *   nothing is there and nothing changed meanwhile (the cancel script checks
 *   status, attempts = 0 and the loss count). Jobs with attempts > 0 keep the
 *   v2 rule (phase pending). In the code: ledger.Cancel / verifyUnsent and
 *   cancelScript (the loss count is the shard's loss_us and write sequence),
 *   with the look-up from the MCP front's SAP access (mcpfront cancel_posting,
 *   sap.Destinations.HoldsDocument); without it, no cancel of a job never
 *   sent. The Agent's FIX 5 branch and these change together.
 * FIX 6 (BUG_VOLATILE_TERMINAL) "cancelled" and "failed" are acknowledged only
 *   once durable (WAITAOF on the local AOF and on the replica that would be
 *   promoted): otherwise a rollback undoes a cancel the agent was told about,
 *   and the job goes on to post. NOT in the code yet: cancel and failure
 *   records are acknowledged without WAITAOF/WAIT (README Guarantees says
 *   what that leaves open).
 * FIX 7 (BUG_BEGINSEND_FAILED, BUG_RECORD_FAILED) "Failed is terminal for
 *   deliveries" all the way, not only in Claim: BeginSend refuses a failed
 *   job, failure records leave a failed job alone and are fenced by run as
 *   well as attempts. Otherwise a delivery that claimed before another one
 *   failed the job without sending (look-up unreadable on the last attempt),
 *   or a delivery of the previous run, revives the job (or fails the new run)
 *   and it posts after the agent read "failed, nothing posted".
 * Mutants of safeguards protocol.md already has: BUG_SKIP_LOOKUP,
 * BUG_NO_SETTLE, BUG_NO_FENCE, BUG_NO_CAS, BUG_CLAIM_FAILED,
 * BUG_NO_LOSS_WINDOW, BUG_WINDOW_NOW (the re-check after BeginSend asks "is a
 * window open now" instead of "was a loss detected since the claim"), and
 * BUG_NEW_UUID_ON_UNKNOWN (journal entries: a new UUID for a resend after an
 * unknown outcome). Alone, BUG_NEW_UUID_ON_UNKNOWN passes: with look-up,
 * settle wait and loss window the UUID is a second line of defence. check.sh
 * shows what it defends: for KIND=JE, BUG_NO_SETTLE alone passes (the stable
 * UUID makes SAP answer the resend with the first call's outcome) and
 * BUG_NO_SETTLE with BUG_NEW_UUID_ON_UNKNOWN posts twice.
 * Assumption mutant LAZY_DETECT: a process may act on the rolled-back ledger
 * before the loss is detected. The model assumes detection comes first
 * (run_id checked on every new connection before its first command; every
 * rollback changes the run_id of the node serving the shard). A wipe without
 * a restart (FLUSHALL) or a failover to a replica whose run_id the process
 * saw before breaks that assumption, and then sapq can post twice.
 *
 * Parameters: -DKIND=1 (JE: journal entry, SOAP UUID replay), 2 (SI: supplier
 * invoice, M8/108), 3 (NODEDUP: sales order, goods movement; the default).
 * Budgets below (-DCRASHES=0 ...) select a fault profile; see check.sh.
 */

#ifndef KIND
#define KIND 3
#endif
#define JE      1
#define SI      2
#define NODEDUP 3

/* Budgets of environment behaviour (small: state space). */
#ifndef CRASHES
#define CRASHES   1   /* worker crashes */
#endif
#ifndef SAPFAULTS
#define SAPFAULTS 2   /* lost responses, client timeouts, unreadable look-ups */
#endif
#ifndef REFUSALS
#define REFUSALS  1   /* SAP refusals: transient, permanent, permanent in a 500 */
#endif
#ifndef DUPS
#define DUPS      1   /* deliveries while another delivery of the task runs */
#endif
#ifndef LOSSES
#define LOSSES    1   /* Redis rollbacks / wipes */
#endif
#ifndef EXPIRIES
#define EXPIRIES  1   /* a finished job's retention runs out */
#endif
#ifndef REPROCESSES
#define REPROCESSES 1 /* operator reprocesses a failed job (besides Endgame's) */
#endif
#ifndef CANCELS
#define CANCELS   1   /* the agent tries to cancel (0 or 1) */
#endif
#ifndef MAXRETRY
#define MAXRETRY  1   /* asynq MaxRetry: deliveries per run = MAXRETRY + 1 */
#endif

/* ---- ledger (Redis): the key's job ---- */
#define QUEUED    1
#define RUNNING   2
#define RETRYING  3
#define SUCCEEDED 4
#define FAILED    5
#define CANCELLED 6
#define PENDING 0
#define SENDING 1
#define POSTED  2
#define live(s) ((s) == QUEUED || (s) == RUNNING || (s) == RETRYING)

typedef Job {
	byte jid;      /* job ID; 0: the idempotency key has no job */
	byte status;
	byte phase;
	byte attempts; /* sends begun */
	byte gen;      /* SOAP message UUID generation */
	byte runN;     /* reprocess count (protocol.md: run) */
	byte sent;     /* send_started: stamp of the last BeginSend; 0 none */
	byte doc;      /* result: SAP document number */
	bit  perm500;  /* last error: a permanent SAP code inside an HTTP 500 */
};

Job L;           /* the ledger as Redis holds it now */
Job snap;        /* what Redis comes back with after losing its last writes */
bit armed;       /* snap taken: a loss may happen */
bit wipe;        /* the loss will be a wipe (empty Redis) */
byte nextJid = 1;

inline copyJob(d, s) {
	d.jid = s.jid; d.status = s.status; d.phase = s.phase; d.attempts = s.attempts;
	d.gen = s.gen; d.runN = s.runN; d.sent = s.sent; d.doc = s.doc; d.perm500 = s.perm500
}
inline clearJob(d) {
	d.jid = 0; d.status = 0; d.phase = 0; d.attempts = 0;
	d.gen = 0; d.runN = 0; d.sent = 0; d.doc = 0; d.perm500 = 0
}

/*
 * Redis loses at most its last MAXLAG writes (AOF everysec: about a second;
 * a replica's lag): a snapshot older than that is no longer what Redis can
 * come back with, and is dropped (a later one may be taken).
 */
#ifndef MAXLAG
#define MAXLAG 3
#endif
byte lag;
inline wrote() {
	if
	:: armed && !wipe ->
		lag++;
		if
		:: lag > MAXLAG -> armed = 0; lag = 0; clearJob(snap)
		:: else -> skip
		fi
	:: else -> skip
	fi
}

/* A durable write (FIX 6): Redis cannot come back with less than this. */
inline durable() {
#ifndef BUG_VOLATILE_TERMINAL
	if
	:: armed && !wipe -> copyJob(snap, L); lag = 0
	:: else -> skip
	fi
#else
	skip
#endif
}

/* ---- loss detection ---- */
byte lossN;      /* losses detected so far (every process's view: see Env) */
byte lossTick;   /* tick when the last loss was detected (lossAt) */
#ifdef LAZY_DETECT
bit undetected;  /* Redis lost writes, no process has noticed yet */
#endif

/* ---- calls to SAP ---- */
#define NC 5 /* 2 deliveries + calls nobody waits for (crash, client timeout) */
#define NOSLOT 255
#define C_FREE      0
#define C_STAMPED   1 /* BeginSend recorded it; the request has not reached SAP */
#define C_ABANDONED 2 /* its deadline passed first: it never reaches SAP */
#define C_ARRIVED   3 /* SAP is processing it */
#define C_DONE      4 /* SAP has decided; the response is on its way */
/* responses */
#define R_NONE    0
#define R_DOC1    1 /* document 1 (the first document SAP holds) */
#define R_DOC2    2
#define R_EXISTS  3 /* M8/108: a document with these business fields exists */
#define R_TRANS   4 /* definite transient refusal (e.g. 503 with Retry-After, 429) */
#define R_PERM    5 /* definite permanent refusal (period closed, account missing) */
#define R_P500    6 /* permanent SAP code inside an HTTP 500: seen as unknown */
#define R_UNKNOWN 7 /* timeout, reset, 502/504, unreadable 2xx */

typedef Call {
	byte st;
	byte stamp;  /* tick of its BeginSend */
	byte gen;
	byte resp;
	bit  orphan; /* nobody waits for the response (crash, client timeout) */
#ifdef BUG_DEADLINE_AFTER_BEGINSEND
	byte arr;    /* tick when it reached SAP */
#endif
};
Call calls[NC];
byte tick;
byte settled;    /* settle(settled) has happened: time is past it + ReconcileAfter */

/* ---- SAP ---- */
byte docs;                 /* documents SAP holds under the reference */
#define NGEN 10
byte uuidResp[NGEN];       /* KIND == JE: response SAP replays for a UUID */

/* ---- the queue ---- */
#define QCAP 5
chan q = [QCAP] of { byte, byte, byte }; /* job, run, retry count */
#define enqueue(j, r, n) assert(nfull(q)); q!j, r, n

/* ---- budgets ---- */
byte crashes = CRASHES;
byte sapfaults = SAPFAULTS;
byte refusals = REFUSALS;
byte dups = DUPS;

/* ---- ghosts: what the agent was told ---- */
bit agentCancelled;  /* Cancel answered ok */
bit toldFailed;      /* agent read "failed, nothing posted"; cleared by reprocess or its own resubmit */
bit agentDone;       /* agent read "succeeded" and stopped */
byte sawDoc;
byte agentJid;       /* the job the agent polls */
bit agentBusy;       /* the agent is in the middle of a cancel */
byte busy;           /* deliveries under way (claimed, not finished) */

/*
 * settle(S): time passes until S + ReconcileAfter. Every call stamped <= S
 * that reached SAP has ended (SAP finishes within ReconcileAfter: the step is
 * blocked until it has), and every such call that has not reached SAP never
 * will (FIX 1: its deadline, counted from before its BeginSend, has passed).
 */
#ifndef BUG_DEADLINE_AFTER_BEGINSEND
#define unsettled(i, S) (calls[i].st == C_ARRIVED && calls[i].stamp <= S)
#else
/* The deadline counts from the post: a late call reaches SAP after the wait,
 * and SAP's ReconcileAfter runs from when it got the request. */
#define unsettled(i, S) (calls[i].st == C_ARRIVED && calls[i].arr <= S)
#endif
inline abandonLate(i, S) {
#ifndef BUG_DEADLINE_AFTER_BEGINSEND
	if
	:: calls[i].st == C_STAMPED && calls[i].stamp <= S -> calls[i].st = C_ABANDONED
	:: else -> skip
	fi
#else
	skip
#endif
}
#define settleGuard(S) (settled >= S || !(unsettled(0, S) || unsettled(1, S) || unsettled(2, S) || unsettled(3, S) || unsettled(4, S)))
inline settleDo(S) {
	if
	:: settled < S ->
		printf("@ time passes: calls stamped <= %d have ended\n", S);
		abandonLate(0, S); abandonLate(1, S); abandonLate(2, S); abandonLate(3, S); abandonLate(4, S);
		settled = S
	:: else -> skip
	fi
}
inline settle(S) {
	atomic { settleGuard(S) -> settleDo(S) }
}
/* The loss window: no sends until lossAt + ReconcileAfter. */
#define lossWindow() settle(lossTick)

inline freeCall(i) {
	calls[i].st = C_FREE; calls[i].stamp = 0; calls[i].gen = 0; calls[i].resp = R_NONE; calls[i].orphan = 0
#ifdef BUG_DEADLINE_AFTER_BEGINSEND
	; calls[i].arr = 0
#endif
}

/* Look-up by reference: found / none / SAP unreadable (fail closed). */
#define L_NONE 0
#define L_FOUND 1
#define L_ERROR 2
inline lookup(res) {
	atomic {
		if
		:: docs > 0 -> res = L_FOUND
		:: else -> res = L_NONE
		fi;
		if
		:: sapfaults > 0 -> sapfaults--; res = L_ERROR
		:: true -> skip
		fi
	}
}

/* ===================================================================== */


inline resetLocals() {
	jid = 0; rn = 0; retried = 0; last = 0; ca = 0; cph = 0; csent = 0; cp5 = 0;
	myloss = 0; fa = 0; out = 0; lk = 0; S = 0; drop = 0; ph = 0; how = 0; p5 = 0
}
/* End of a delivery: 0 done (nil or SkipRetry: asynq completes or archives
 * the task), 1 error (asynq retries, or archives after the last delivery),
 * 2 wait (the task comes back, no retry spent). */
inline finish(how) {
	if
	:: how == 1 && !last -> enqueue(jid, rn, retried + 1)
	:: how == 2 -> enqueue(jid, rn, retried)
	:: else -> skip
	fi;
	resetLocals();
	busy--;
	goto end_idle
}
/* The process dies. SAP still processes a call that reached it; asynq's
 * recoverer retries the task once the lease expires (archives it after the
 * last delivery: the job is stranded). */
inline crashNow() {
		crashes--;
		printf("@ W%d crashes\n", _pid);
		if
		:: slot != NOSLOT ->
			if
			:: calls[slot].st == C_ARRIVED -> calls[slot].orphan = 1
			:: else -> freeCall(slot)
			fi;
			slot = NOSLOT
		:: else -> skip
		fi;
		finish(1)
}

/* ledger.RecordPosted: fenced by attempts (protocol.md step 7); a document
 * is true whoever recorded it, so a loss does not void it. */
inline recordPosted(d) {
	atomic {
		if
		:: L.jid == jid && L.phase != POSTED && L.status != CANCELLED && L.attempts == fa ->
			L.status = SUCCEEDED; L.phase = POSTED; L.doc = d; L.perm500 = 0; wrote();
			printf("@ W%d records succeeded, document %d\n", _pid, d)
		:: else -> printf("@ W%d record posted: fenced off\n", _pid)
		fi
	}
}

/* ledger.RecordFailure (finishScript): fenced by attempts, and (FIX 2) void
 * after a loss detected since the claim. Recording "failed, nothing posted"
 * while SAP holds a document is a lie. */
#ifndef BUG_NO_FENCE
#define FENCED (L.attempts == fa)
#else
#define FENCED 1
#endif
#ifndef BUG_RECORD_AFTER_LOSS
#define SAME_LOSS (lossN == myloss)
#else
#define SAME_LOSS 1
#endif
#ifndef BUG_RECORD_FAILED
/* FIX 7: a failed job is left alone (only Reprocess reopens it), and a
 * delivery of an earlier run records nothing */
#define STILL_LIVE (L.status != FAILED && L.runN == rn)
#else
#define STILL_LIVE 1
#endif
inline recordFailure(st, ph, p5) {
	atomic {
		if
		:: L.jid == jid && L.phase != POSTED && L.status != CANCELLED && FENCED && SAME_LOSS && STILL_LIVE ->
			L.status = st; L.phase = ph; L.perm500 = p5; wrote();
			printf("@ W%d records status %d phase %d perm500 %d (3 retrying, 5 failed; 0 pending, 1 sending)\n", _pid, st, ph, p5);
			if
			:: st == FAILED ->
				assert(ph != PENDING || docs == 0); /* NO LIE */
				durable()
			:: else -> skip
			fi
		:: else -> printf("@ W%d record failure: fenced off\n", _pid)
		fi
	}
}

/* A new job of the key (ledger.Submit's submitScript). */
inline createJob() {
	L.jid = nextJid; nextJid++; wrote();
	L.status = QUEUED; L.attempts = 0; L.gen = 0; L.runN = 0; L.sent = 0;
	L.doc = 0; L.perm500 = 0;
#ifndef BUG_NEW_JOB_PENDING
	L.phase = SENDING /* FIX 4: unverified until a look-up */
#else
	L.phase = PENDING
#endif
	;
	enqueue(L.jid, 0, 0);
	printf("@ agent submits: job %d created\n", L.jid)
}


/*
 * One asynq handler, delivery after delivery. Every atomic block is one step
 * that other processes cannot interleave with: a Redis script, a SAP call's
 * arrival or response, a look-up. A crash (CRASH_INSTEAD) may happen instead
 * of every step after the claim: before the settle wait or the look-up,
 * between look-up and BeginSend, between BeginSend and the post, while SAP
 * processes the call, and after SAP answered but before the outcome is
 * recorded.
 */
/* (never combine with an else branch: else would only run once the budget is spent) */
#define CRASH_INSTEAD :: crashes > 0 -> crashNow()

proctype Worker() {
	byte jid, rn, retried;
	bit last;
	byte ca, cph, csent; bit cp5; /* the job as Claim read it */
	byte myloss;                  /* losses detected when this delivery claimed */
	byte fa;                      /* fence: attempts this delivery expects */
	byte slot = NOSLOT;
	byte out, lk, S;
	bit drop;
	byte ph, how; bit p5; /* step 7's verdict (set and used in one step) */

end_idle:
	atomic {
		q?jid, rn, retried;
		busy++;
		/* lease expiry: asynq also hands the task to another worker, as
		 * its next retry, while this delivery still runs */
		if
		:: dups > 0 && retried < MAXRETRY -> dups--; enqueue(jid, rn, retried + 1)
		:: true -> skip
		fi;
		last = (retried >= MAXRETRY);

		/* step 2: Claim (ledger.Claim). Drop the delivery, without calling
		 * SAP, if the job is missing, cancelled, posted, failed, or if this
		 * is a task of an earlier run. */
		drop = (L.jid != jid || L.status == CANCELLED || L.phase == POSTED || L.runN != rn
#ifndef BUG_CLAIM_FAILED
		        || L.status == FAILED
#endif
		);
		if
		:: drop ->
			printf("@ W%d drops task of job %d run %d\n", _pid, jid, rn);
			finish(0)
		:: else ->
			ca = L.attempts; cph = L.phase; csent = L.sent; cp5 = L.perm500; fa = ca;
			myloss = lossN;
			L.status = RUNNING; wrote();
			printf("@ W%d claims job %d run %d try %d: attempts %d phase %d sent %d\n", _pid, jid, rn, retried, ca, cph, csent)
		fi;

		/* step 3: how long to wait (no retry spent): the loss window, and,
		 * if an earlier call's outcome is unknown, until it must have ended */
		S = 0;
#ifndef BUG_NO_LOSS_WINDOW
		S = lossTick;
#endif
#ifndef BUG_NO_SETTLE
		if
		:: cph == SENDING && csent > S -> S = csent
		:: else -> skip
		fi
#endif
	}
	atomic {
		if
		CRASH_INSTEAD
		:: settleGuard(S) -> settleDo(S); S = 0; csent = 0
		fi
	}

	/* step 4: look-up by reference (worker.(*attempt).reconcile) */
	atomic {
		if
		CRASH_INSTEAD
		:: true ->
#ifndef BUG_SKIP_LOOKUP
			lookup(lk);
#else
			lk = L_NONE;
#endif
			printf("@ W%d looks up: %d (0 none, 1 found, 2 error)\n", _pid, lk)
		fi
	}

	atomic {
		if
		CRASH_INSTEAD
		:: lk == L_ERROR ->
			/* fail closed: keep the phase, retry later */
			recordFailure((last -> FAILED : RETRYING), cph, cp5);
			finish(1)
		:: lk == L_FOUND ->
			recordPosted(R_DOC1); finish(0) /* adopt */
		:: lk == L_NONE && cp5 ->
			/* the 500 carried a permanent code, and SAP holds nothing */
			recordFailure(FAILED, PENDING, 0); finish(0)
		:: lk == L_NONE && !cp5 ->
			cph = 0; lk = 0;
			/* step 5: BeginSend (ledger.BeginSend) */
			drop = (L.jid != jid || L.status == CANCELLED || L.phase == POSTED
#ifndef BUG_BEGINSEND_FAILED
			        || L.status == FAILED
#endif
			);
			if
			:: drop -> printf("@ W%d BeginSend refused\n", _pid); finish(0)
#ifndef BUG_NO_CAS
			:: !drop && L.attempts != ca ->
				/* another delivery sent since the claim: it owns the outcome */
				printf("@ W%d BeginSend: concurrent\n", _pid); finish(2)
#endif
			:: else -> skip
			fi;
#if KIND == JE
			/* the same UUID for a resend after an unknown outcome, a new
			 * one after a definite refusal (only journal entries carry a
			 * UUID; for other kinds gen stays 0 and out of the state) */
			if
#ifndef BUG_NEW_UUID_ON_UNKNOWN
			:: L.attempts > 0 && L.phase == PENDING -> L.gen++
#else
			:: L.attempts > 0 -> L.gen++
#endif
			:: else -> skip
			fi;
			assert(L.gen < NGEN);
#endif
			L.phase = SENDING; L.status = RUNNING; wrote();
			tick++; L.sent = tick; L.attempts++; fa = L.attempts;
			/* the call, stamped now: its deadline is already running */
			if
			:: calls[0].st == C_FREE -> slot = 0
			:: else -> if
				:: calls[1].st == C_FREE -> slot = 1
				:: else -> if
					:: calls[2].st == C_FREE -> slot = 2
					:: else -> if
						:: calls[3].st == C_FREE -> slot = 3
						:: else -> assert(calls[4].st == C_FREE); slot = 4
						fi
					fi
				fi
			fi;
			calls[slot].st = C_STAMPED; calls[slot].stamp = tick;
			calls[slot].gen = L.gen; calls[slot].resp = R_NONE; calls[slot].orphan = 0;
			printf("@ W%d BeginSend: attempts %d gen %d stamp %d (call %d)\n", _pid, L.attempts, L.gen, tick, slot)
		fi
	}

	/* step 6: re-check the loss window, then post */
	atomic {
		if
		CRASH_INSTEAD
		:: true ->
#ifndef BUG_NO_LOSS_WINDOW
#ifndef BUG_WINDOW_NOW
			/* a loss detected since the claim voids the look-up */
			if
			:: lossN != myloss ->
#else
			if
			:: settled < lossTick ->
#endif
				printf("@ W%d: loss detected since the claim; not sending\n", _pid);
				freeCall(slot); slot = NOSLOT; finish(2)
			:: else -> skip
			fi;
#endif
			if
			:: calls[slot].st == C_ABANDONED ->
				out = R_UNKNOWN; freeCall(slot); slot = NOSLOT;
				printf("@ W%d post: deadline passed before sending\n", _pid)
			:: calls[slot].st == C_STAMPED ->
#ifdef INVARIANT
				/* protocol.md's invariant: nothing is sent unless SAP holds
				 * no document and no earlier call can still commit one */
				assert(docs == 0);
				assert(!(calls[0].st == C_ARRIVED || calls[1].st == C_ARRIVED ||
				         calls[2].st == C_ARRIVED || calls[3].st == C_ARRIVED || calls[4].st == C_ARRIVED));
#endif
				out = R_NONE; calls[slot].st = C_ARRIVED;
#ifdef BUG_DEADLINE_AFTER_BEGINSEND
				/* reached SAP before the next BeginSend or loss detection */
				calls[slot].arr = tick;
#endif
				printf("@ W%d post reaches SAP (call %d)\n", _pid, slot)
			fi
		fi
	}

	/* the response: delivered, lost, or given up on by the client (then
	 * SAP may still commit: a slow commit) */
	atomic {
		if
		CRASH_INSTEAD
		:: out != R_NONE -> skip
		:: out == R_NONE && calls[slot].st == C_DONE ->
			out = calls[slot].resp; freeCall(slot); slot = NOSLOT
		:: out == R_NONE && calls[slot].st == C_DONE && sapfaults > 0 ->
			sapfaults--; out = R_UNKNOWN; freeCall(slot); slot = NOSLOT
		:: out == R_NONE && calls[slot].st == C_ARRIVED && sapfaults > 0 ->
			sapfaults--; out = R_UNKNOWN; calls[slot].orphan = 1; slot = NOSLOT
		fi;
		printf("@ W%d response: %d (1,2 document, 3 exists, 4 transient, 5 permanent, 6 permanent in 500, 7 unknown)\n", _pid, out);
		if
		:: out == R_EXISTS ->
			/* M8/108: look up now */
			lookup(lk); printf("@ W%d looks up after M8/108: %d\n", _pid, lk)
		:: else -> skip
		fi
	}

	/* step 7: record the outcome, then answer asynq */
	atomic {
		if
		CRASH_INSTEAD
		:: out == R_DOC1 || out == R_DOC2 -> recordPosted(out); finish(0)
		:: out == R_EXISTS && lk == L_FOUND -> recordPosted(R_DOC1); finish(0)
		:: !(out == R_DOC1 || out == R_DOC2 || out == R_EXISTS && lk == L_FOUND) ->
			/* a failure: what SAP may hold (phase), and whether asynq
			 * retries (how = 1) or the job has failed for good (how = 0) */
			if
			:: out == R_EXISTS && lk == L_ERROR -> ph = SENDING; how = 1
			:: out == R_EXISTS && lk == L_NONE ->
				/* never record "nothing posted" for a job sent before */
				ph = (ca > 0 -> SENDING : PENDING); how = 0
			:: out == R_PERM -> ph = PENDING; how = 0
			:: out == R_TRANS -> ph = PENDING; how = 1
			:: out == R_P500 -> ph = SENDING; p5 = 1; how = 1
			:: out == R_UNKNOWN -> ph = SENDING; how = 1
			fi;
			recordFailure((how == 0 || last -> FAILED : RETRYING), ph, p5);
			finish(how)
		fi
	}
}

/* ledger.Reprocess: a failed (or stranded) job is queued again, run + 1. */
inline reprocess() {
	L.status = QUEUED; L.runN++; toldFailed = 0; wrote();
	printf("@ job %d reprocessed: run %d\n", L.jid, L.runN);
	enqueue(L.jid, L.runN, 0)
}

/*
 * The agent: submits, polls get_posting, resubmits the same key and payload
 * when its job is not found, and may cancel once. It stops polling once it
 * has read "succeeded" or its cancel was accepted.
 */
#define cancellableStatus (L.status == QUEUED || L.status == RETRYING || L.status == FAILED)
#ifndef BUG_CANCEL_NO_LOOKUP
/* protocol.md step 8: phase pending, status queued, retrying or failed */
#define cancellableNow (L.phase == PENDING && cancellableStatus)
#else
#define cancellableNow (cancellableStatus && (L.phase == PENDING || L.phase == SENDING && L.attempts == 0))
#endif
/* FIX 5: a job never sent (unverified) is cancelled after a look-up */
#define cancellableAfterLookup (L.phase == SENDING && L.attempts == 0 && cancellableStatus)

inline cancelJob() {
	printf("@ agent cancels job %d\n", L.jid);
	L.phase = PENDING; L.status = CANCELLED; wrote();
	assert(docs == 0); /* NO LIE */
	durable();
	agentCancelled = 1
}

proctype Agent() {
	byte cl, lk;
	bit cancels = CANCELS;

	atomic { createJob(); agentJid = L.jid };
end_poll:
	do
	/* get_posting: not_found -> resubmit the same key and payload */
	:: atomic {
		L.jid != agentJid ->
		if
		:: L.jid == 0 -> createJob(); toldFailed = 0
		:: else -> printf("@ agent resubmits: replayed job %d\n", L.jid) /* the key names another job */
		fi;
		agentJid = L.jid
	   }
	:: atomic {
		L.jid == agentJid && L.status == FAILED && L.phase == PENDING && !toldFailed ->
		toldFailed = 1; printf("@ agent reads: failed, nothing posted\n")
	   }
	:: atomic {
		L.jid == agentJid && L.status == SUCCEEDED ->
		sawDoc = L.doc; agentDone = 1; printf("@ agent reads: succeeded, document %d\n", sawDoc)
	   };
	   break
	/* cancel (ledger.Cancel) */
	:: atomic {
		cancels && L.jid == agentJid && cancellableNow ->
		cancels = 0; cancelJob()
	   };
	   break
#ifndef BUG_CANCEL_NO_LOOKUP
	/* FIX 5: outside any loss window, look SAP up; then the cancel script
	 * checks that nothing changed meanwhile (status, attempts = 0, no new
	 * loss) */
	:: atomic {
		cancels && L.jid == agentJid && cancellableAfterLookup && settleGuard(lossTick) ->
		settleDo(lossTick);
		cancels = 0; cl = lossN; agentBusy = 1;
		lookup(lk)
	   };
	   atomic {
		if
		:: lk == L_NONE && lossN == cl && L.jid == agentJid && cancellableAfterLookup ->
			cancelJob()
		:: else -> printf("@ agent: cancel refused after look-up\n")
		fi;
		cl = 0; lk = 0; agentBusy = 0;
		if
		:: agentCancelled -> break
		:: else -> skip
		fi
	   }
#endif
	od
}

/* Redis losing writes, the sweeper, retention, the operator. */
#define finished(s) ((s) == SUCCEEDED || (s) == FAILED || (s) == CANCELLED)
proctype Env() {
	byte losses = LOSSES, expiries = EXPIRIES, reprocesses = REPROCESSES;
end_env:
	do
	/* the point Redis will come back to: a snapshot of the ledger now (AOF
	 * everysec crash, failover to a lagging replica), or nothing (wipe) */
	:: atomic {
		losses > 0 && !armed ->
		copyJob(snap, L); wipe = 0; armed = 1;
		printf("@ Redis state that a loss returns to: job %d status %d phase %d attempts %d\n", L.jid, L.status, L.phase, L.attempts)
	   }
	:: atomic { losses > 0 && !armed -> wipe = 1; armed = 1; printf("@ Redis will be wiped\n") }
	:: atomic {
		armed ->
		if
		:: wipe -> clearJob(L)
		:: else -> copyJob(L, snap)
		fi;
		armed = 0; wipe = 0; lag = 0; clearJob(snap); losses--;
		printf("@ Redis loses writes: job %d status %d phase %d attempts %d\n", L.jid, L.status, L.phase, L.attempts);
#ifdef LAZY_DETECT
		undetected = 1
	   }
	   atomic {
#endif
		/* detection (run_id, seq, epoch): lossAt := now */
#ifdef BUG_DEADLINE_AFTER_BEGINSEND
		tick++; /* a call that reaches SAP after the detection is after lossAt */
#endif
		lossN++; lossTick = tick;
		printf("@ loss detected: no sends until calls stamped <= %d have ended\n", lossTick);
#ifdef LAZY_DETECT
		undetected = 0;
#endif
#ifndef BUG_NO_SUSPECT
		/* FIX 3: what Redis forgot may have been a call */
		if
		:: L.jid != 0 && L.status != SUCCEEDED && L.status != CANCELLED ->
			L.phase = SENDING; L.sent = lossTick
		:: else -> skip
		fi;
#endif
		/* the sweeper re-enqueues a live job whose task may be gone */
		if
		:: L.jid != 0 && live(L.status) -> enqueue(L.jid, L.runN, 0)
		:: else -> skip
		fi
	   }
	/* retention: a finished job expires, long after its last call ended */
	:: atomic {
		expiries > 0 && L.jid != 0 && finished(L.status) && settleGuard(tick) ->
		settleDo(tick);
		expiries--; printf("@ job %d expires\n", L.jid); clearJob(L); wrote()
	   }
	/* an operator reprocesses a failed job (ledger.Reprocess) */
	:: atomic {
		reprocesses > 0 && L.jid != 0 && L.status == FAILED ->
		reprocesses--; reprocess()
	   }
	od
}

/* SAP processes each call that reached it. */
inline commitOrRefuse(i) {
	if
	:: docs++;
		assert(docs <= 1);                                /* NO DUPLICATE */
		assert(!agentCancelled && !toldFailed);          /* NO LIE */
		assert(!(L.jid != 0 && L.status == CANCELLED));  /* NO LIE */
		calls[i].resp = docs
	:: refusals > 0 -> refusals--; calls[i].resp = R_TRANS
	:: refusals > 0 -> refusals--; calls[i].resp = R_PERM
	:: refusals > 0 -> refusals--; calls[i].resp = R_P500
	fi
}
inline decide(i) {
#if KIND == JE
	if
	:: uuidResp[calls[i].gen] != R_NONE -> calls[i].resp = uuidResp[calls[i].gen] /* replay */
	:: else -> commitOrRefuse(i); uuidResp[calls[i].gen] = calls[i].resp
	fi;
#elif KIND == SI
	if
	:: docs > 0 -> calls[i].resp = R_EXISTS /* M8/108 */
	:: else -> commitOrRefuse(i)
	fi;
#else
	commitOrRefuse(i);
#endif
	printf("@ SAP decides call %d (gen %d): %d; SAP holds %d documents\n", i, calls[i].gen, calls[i].resp, docs);
	if
	:: calls[i].orphan -> freeCall(i)
	:: else -> calls[i].st = C_DONE
	fi
}
proctype Sap() {
end_sap:
	do
	:: atomic { calls[0].st == C_ARRIVED -> decide(0) }
	:: atomic { calls[1].st == C_ARRIVED -> decide(1) }
	:: atomic { calls[2].st == C_ARRIVED -> decide(2) }
	:: atomic { calls[3].st == C_ARRIVED -> decide(3) }
	:: atomic { calls[4].st == C_ARRIVED -> decide(4) }
	od
}

/*
 * Endgame: whenever the system is quiet (no task queued, no delivery under
 * way, no call at SAP, the agent not in the middle of a cancel and not about
 * to resubmit), the operator reprocesses a stranded job (live, but no task:
 * a crash on the last delivery) or one that failed with its outcome unknown;
 * if there is none, the end state must hold (NOTHING LOST). Faults may still
 * come later; the check holds at every quiet point.
 */
#define quiet (agentJid != 0 && len(q) == 0 && busy == 0 && !agentBusy && calls[0].st == C_FREE && calls[1].st == C_FREE && \
               calls[2].st == C_FREE && calls[3].st == C_FREE && calls[4].st == C_FREE && \
               (L.jid == agentJid || agentDone || agentCancelled))
#define stuck (L.jid != 0 && (live(L.status) || L.status == FAILED && L.phase == SENDING))
proctype Endgame() {
end_eg:
	do
	:: atomic {
		quiet && stuck ->
		printf("@ endgame: the operator reprocesses job %d (stranded, or failed with unknown outcome)\n", L.jid);
		reprocess()
	   }
	:: atomic {
		quiet && !stuck ->
		assert(docs <= 1);
		assert(!agentCancelled || docs == 0);
		if
		:: L.jid != 0 ->
			assert(L.status == SUCCEEDED && L.phase == POSTED && L.doc == R_DOC1 && docs == 1 ||
			       L.status == FAILED && L.phase == PENDING && docs == 0 ||
			       L.status == CANCELLED && docs == 0)
		:: else ->
			assert(agentDone && sawDoc == R_DOC1 && docs == 1 || agentCancelled && docs == 0)
		fi
	   }
	od
}

init {
	atomic {
		run Sap(); run Env(); run Agent(); run Worker(); run Worker(); run Endgame()
	}
}
