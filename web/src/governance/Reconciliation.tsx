import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router-dom";
import { api, data, type Schemas } from "../api/client";
import { Empty, ErrorMessage, Loading, Pager, StatusBadge, formatDate, useCursorPager } from "../components/common";

type Finding = Schemas["FindingResponse"];
type Kind = "mismatched" | "source_only" | "downstream_only";
type Review = Schemas["ReviewResponse"];
const PAGE = 25;
const PENDING_POLL_MS = 5000;
const KINDS: Kind[] = ["mismatched", "source_only", "downstream_only"];

interface FieldDiff {
  field?: string;
  where?: string;
  source?: string | null;
  downstream?: string | null;
}

/** One differing field as a line of text: `ltv_ratio: 80 → 85 (loan_facts)`. */
export function describeField(diff: FieldDiff): string {
  const show = (value: string | null | undefined) => (value == null || value === "" ? "(empty)" : value);
  return `${diff.field ?? "?"}: ${show(diff.source)} → ${show(diff.downstream)}${diff.where ? ` (${diff.where})` : ""}`;
}

/** A run's reconciliation: summary, findings by kind (paged), run again, accept or flag. */
export function RunReconciliation({ runId, canAct }: { runId: string; canAct: boolean }) {
  const client = useQueryClient();
  const pager = useCursorPager();
  const [kind, setKind] = useState<Kind | "">("");
  const key = ["reconciliation", runId, kind, pager.after];
  const result = useQuery({
    queryKey: key,
    queryFn: async () =>
      data(
        await api.GET("/api/runs/{run_id}/reconciliation", {
          params: { path: { run_id: runId }, query: { kind: kind || undefined, limit: PAGE, after: pager.after } },
        }),
      ),
    placeholderData: (previous) => previous,
    // A completed run is reconciled automatically within seconds: look again until it is.
    refetchInterval: (query) => (query.state.data?.status === "pending" ? PENDING_POLL_MS : false),
  });
  const again = useMutation({
    mutationFn: async () =>
      data(await api.POST("/api/runs/{run_id}/reconciliation", { params: { path: { run_id: runId }, query: { limit: PAGE } } })),
    onSuccess: () => {
      pager.reset();
      void client.invalidateQueries({ queryKey: ["reconciliation", runId] });
    },
  });
  const r = result.data;
  return (
    <section aria-labelledby={`recon-${runId}`} className="card">
      <h2 id={`recon-${runId}`}>Reconciliation</h2>
      <ErrorMessage error={result.error} />
      {result.isPending && <Loading />}
      {r && (
        <>
          <p>
            <StatusBadge status={r.status} /> {r.reconciled_at ? <>reconciled {formatDate(r.reconciled_at)}</> : "not reconciled yet"}
          </p>
          {r.error && (
            <p role="alert" className="error">
              Reconciliation failed: {r.error}
            </p>
          )}
          <dl className="facts">
            <dt>Matched</dt>
            <dd>{r.counts.matched}</dd>
            <dt>Mismatched</dt>
            <dd>{r.counts.mismatched}</dd>
            <dt>Source only</dt>
            <dd>{r.counts.source_only}</dd>
            <dt>Downstream only</dt>
            <dd>{r.counts.downstream_only}</dd>
          </dl>
        </>
      )}
      <div className="toolbar">
        {canAct && (
          <button type="button" onClick={() => again.mutate()} disabled={again.isPending}>
            {again.isPending ? "Reconciling…" : "Reconcile again"}
          </button>
        )}
        <label>
          Kind
          <select
            aria-label="Finding kind"
            value={kind}
            onChange={(e) => {
              setKind(e.target.value as Kind | "");
              pager.reset();
            }}
          >
            <option value="">any</option>
            {KINDS.map((k) => (
              <option key={k} value={k}>
                {k.replace(/_/g, " ")}
              </option>
            ))}
          </select>
        </label>
      </div>
      <ErrorMessage error={again.error} />
      {r && r.findings.items.length === 0 && <Empty>{r.status === "pending" ? "This run has not been reconciled yet; it is, automatically, in a few seconds." : "No findings: every record reconciles."}</Empty>}
      {r && r.findings.items.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">Kind</th>
              <th scope="col">Where</th>
              <th scope="col">Loan</th>
              <th scope="col">Differences</th>
              <th scope="col">Review</th>
            </tr>
          </thead>
          <tbody>
            {r.findings.items.map((finding) => (
              <FindingRow key={finding.finding_id} runId={runId} finding={finding} canAct={canAct} />
            ))}
          </tbody>
        </table>
      )}
      {r && <Pager pager={pager} nextCursor={r.findings.next_cursor} label="Findings" busy={result.isPlaceholderData} />}
    </section>
  );
}

function FindingRow({ runId, finding, canAct }: { runId: string; finding: Finding; canAct: boolean }) {
  const client = useQueryClient();
  const [notes, setNotes] = useState("");
  const [recorded, setRecorded] = useState<Review | null>(null);
  const review = useMutation({
    mutationFn: async (action: "accept" | "flag") =>
      data(
        await api.POST("/api/runs/{run_id}/reconciliation/findings/{finding_id}/{action}", {
          params: { path: { run_id: runId, finding_id: finding.finding_id, action } },
          body: { notes },
        }),
      ),
    onSuccess: (answer) => {
      setRecorded(answer);
      setNotes("");
      void client.invalidateQueries({ queryKey: ["reconciliation", runId] });
    },
  });
  const action = recorded?.action ?? finding.review;
  const by = recorded?.reviewed_by ?? finding.reviewed_by;
  const why = recorded?.notes ?? finding.review_notes;
  const label = finding.seller_loan_number ?? finding.locator;
  // The API takes a review only with notes (why it is accepted or flagged).
  const noNotes = notes.trim() === "";
  const notesHint = `notes-hint-${finding.finding_id}`;
  return (
    <tr>
      <td>{finding.kind.replace(/_/g, " ")}</td>
      <td>
        <code>{finding.locator}</code>
      </td>
      <td>{finding.loan_id ? <Link to={`/runs/${runId}/loans/${finding.loan_id}`}>{label}</Link> : label}</td>
      <td>
        <ul className="plain">
          {(finding.fields as FieldDiff[]).map((diff, index) => (
            <li key={index}>{describeField(diff)}</li>
          ))}
        </ul>
      </td>
      <td>
        {action && (
          <p>
            <StatusBadge status={action === "accept" ? "accepted" : "flagged"} /> by {by}: {why}
          </p>
        )}
        {canAct && (
          <form className="review" aria-label={`Review finding ${finding.locator}`} onSubmit={(e) => e.preventDefault()}>
            <label>
              Notes
              <input
                value={notes}
                onChange={(e) => setNotes(e.target.value)}
                aria-label={`Notes on ${finding.locator}`}
                aria-describedby={noNotes ? notesHint : undefined}
                required
              />
            </label>
            {noNotes && (
              <span className="hint" id={notesHint}>
                Notes are needed to accept or flag.
              </span>
            )}
            <button type="button" disabled={review.isPending || noNotes} onClick={() => review.mutate("accept")}>
              Accept
            </button>
            <button type="button" disabled={review.isPending || noNotes} onClick={() => review.mutate("flag")}>
              Flag for correction
            </button>
            <ErrorMessage error={review.error} />
          </form>
        )}
      </td>
    </tr>
  );
}
