import "./governance.css";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { api, data, type Loan, type Schemas } from "../api/client";
import { hasRole, useMe } from "../auth";
import { Empty, ErrorMessage, Loading, formatDate } from "../components/common";
import { SlicePager, useSlicePager } from "./paging";
import { ReprocessDisclosure } from "./Reprocess";

type Correction = Schemas["CorrectionResponse"];
type HistoryEvent = Schemas["HistoryEvent"];

/** The canonical loan fields (contracts/loans.py LOAN_FIELDS): what a correction may name, with
 * the loan's other tape columns. */
export const LOAN_FIELDS = [
  "seller_loan_number", "loan_amount", "note_rate", "ltv_ratio", "dti_ratio", "credit_score", "property_type",
  "occupancy_status", "loan_purpose", "purchase_price", "appraisal_value",
] as const;
const PAGE = 20;

/** How the corrections are read again until the projector confirms a new one: after 1, 2, 4… s
 * (at most 10 s between reads), giving up after a minute: well inside the API's per-user limit. */
export interface ConfirmPolling {
  firstMs: number;
  maxMs: number;
  giveUpMs: number;
}
export const CONFIRM_POLLING: ConfirmPolling = { firstMs: 1000, maxMs: 10_000, giveUpMs: 60_000 };

/** The wait before the next read of the corrections, after `reads` reads since the correction. */
export function confirmDelay(reads: number, polling: ConfirmPolling = CONFIRM_POLLING): number {
  return Math.min(polling.firstMs * 2 ** Math.min(reads, 30), polling.maxMs);
}

export interface FieldRow {
  field: string;
  source: string | null;
  current: string | null;
  corrected: boolean;
  invalid: boolean;
}

/** Each field's value as this run read it, and as the latest correction (if any) makes it. */
export function fieldRows(loan: Loan, corrections: Correction[]): FieldRow[] {
  const latest = new Map<string, string>();
  for (const correction of corrections) latest.set(correction.field, correction.value);
  const source = (field: string): string | null =>
    field in loan.extra ? loan.extra[field] : ((loan as unknown as Record<string, string | null>)[field] ?? null);
  const fields = [...LOAN_FIELDS, ...Object.keys(loan.extra).filter((name) => !(LOAN_FIELDS as readonly string[]).includes(name))];
  return fields.map((field) => ({
    field,
    source: source(field),
    current: latest.has(field) ? latest.get(field)! : source(field),
    corrected: latest.has(field),
    invalid: loan.invalid_fields.includes(field),
  }));
}

/** Corrections the server lists, then those just recorded that its read model does not show yet. */
export function mergeCorrections(listed: Correction[], recorded: Correction[]): { all: Correction[]; unconfirmed: Correction[] } {
  const known = new Set(listed.map((correction) => correction.correction_id));
  const unconfirmed = recorded.filter((correction) => !known.has(correction.correction_id));
  return { all: [...listed, ...unconfirmed], unconfirmed };
}

/** The loan view's governance: record editor (source vs current), DQ issues, corrections, lineage
 * and reprocess. */
export function LoanRecord({ loan, polling = CONFIRM_POLLING }: { loan: Loan; polling?: ConfirmPolling }) {
  const me = useMe();
  const canCorrect = hasRole(me, "admin", "analyst", "senior_analyst");
  const client = useQueryClient();
  const [recorded, setRecorded] = useState<Correction[]>([]);
  // Reads of the corrections since the last correction (or "check again"), and whether the wait
  // for the projector's confirmation was given up.
  const reads = useRef(0);
  const [watch, setWatch] = useState(0);
  const [gaveUp, setGaveUp] = useState(false);
  const corrections = useQuery({
    queryKey: ["corrections", loan.loan_id],
    queryFn: async () => {
      reads.current += 1;
      return data(await api.GET("/api/loans/{loan_id}/corrections", { params: { path: { loan_id: loan.loan_id } } }));
    },
    // Until the projector shows what was just recorded, look again ever more slowly; not after
    // an error, nor once given up.
    refetchInterval: (query) =>
      !gaveUp && !query.state.error && mergeCorrections(query.state.data ?? [], recorded).unconfirmed.length
        ? confirmDelay(Math.max(reads.current - 1, 0), polling)
        : false,
  });
  const { all, unconfirmed } = mergeCorrections(corrections.data ?? [], recorded);
  const waiting = unconfirmed.length > 0;
  useEffect(() => {
    if (!waiting) return;
    const timer = setTimeout(() => setGaveUp(true), polling.giveUpMs);
    return () => clearTimeout(timer);
  }, [waiting, watch, polling.giveUpMs]);
  // The lineage is read once more when the projector confirms, not polled meanwhile.
  const wasWaiting = useRef(false);
  useEffect(() => {
    if (wasWaiting.current && !waiting) void client.invalidateQueries({ queryKey: ["history", loan.loan_id] });
    wasWaiting.current = waiting;
  }, [waiting, client, loan.loan_id]);
  function watchAgain() {
    reads.current = 0;
    setGaveUp(false);
    setWatch((count) => count + 1);
  }
  function checkAgain() {
    watchAgain();
    void corrections.refetch();
  }
  const rows = fieldRows(loan, all);
  const [field, setField] = useState<string>(LOAN_FIELDS[3]);
  const [value, setValue] = useState("");
  const [reason, setReason] = useState("");
  const valueInput = useRef<HTMLInputElement>(null);
  const correct = useMutation({
    mutationFn: async () =>
      data(await api.POST("/api/loans/{loan_id}/corrections", { params: { path: { loan_id: loan.loan_id } }, body: { field, value, reason } })),
    onSuccess: (answer) => {
      setRecorded((current) => [...current, answer]);
      setReason("");
      watchAgain();
      void client.invalidateQueries({ queryKey: ["corrections", loan.loan_id] });
    },
  });
  const missing = LOAN_FIELDS.filter((name) => loan[name] == null);

  function edit(row: FieldRow) {
    setField(row.field);
    setValue(row.current ?? "");
    valueInput.current?.focus();
  }

  return (
    <>
      <section aria-labelledby="record-title" className="card">
        <h2 id="record-title">Record: source and current values</h2>
        <ErrorMessage error={corrections.error} />
        <table>
          <thead>
            <tr>
              <th scope="col">Field</th>
              <th scope="col">Source (this run)</th>
              <th scope="col">Current (with corrections)</th>
              {canCorrect && <th scope="col">Edit</th>}
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr key={row.field} className={row.corrected ? "corrected" : undefined}>
                <th scope="row">
                  {row.field}
                  {row.invalid && <span className="badge badge-failed">invalid</span>}
                </th>
                <td>{row.source ?? "—"}</td>
                <td>
                  {row.current ?? "—"}
                  {row.corrected && <span className="badge badge-pending">corrected</span>}
                </td>
                {canCorrect && (
                  <td>
                    <button type="button" className="link" onClick={() => edit(row)} aria-label={`Edit ${row.field}`}>
                      Edit
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
        {canCorrect && (
          <form
            className="fields correction"
            aria-label="Correct a field"
            onSubmit={(event) => {
              event.preventDefault();
              correct.mutate();
            }}
          >
            <label>
              Field
              <select aria-label="Field" value={field} onChange={(e) => setField(e.target.value)}>
                {rows.map((row) => (
                  <option key={row.field} value={row.field}>
                    {row.field}
                  </option>
                ))}
              </select>
            </label>
            <label>
              New value
              <input ref={valueInput} value={value} onChange={(e) => setValue(e.target.value)} />
            </label>
            <label>
              Reason
              <input value={reason} onChange={(e) => setReason(e.target.value)} size={40} />
            </label>
            <button type="submit" disabled={correct.isPending}>
              {correct.isPending ? "Recording…" : "Record correction"}
            </button>
          </form>
        )}
        <ErrorMessage error={correct.error} />
        {correct.isSuccess && (
          <p role="status" className="notice">
            Correction of {correct.data.field} recorded; a reprocess with corrections applies it.
          </p>
        )}
        {waiting && (gaveUp || corrections.error) && (
          <p role="status" className="notice">
            The event log has not confirmed {unconfirmed.length === 1 ? "the new correction" : `${unconfirmed.length} new corrections`} yet.{" "}
            <button type="button" onClick={checkAgain}>
              Check again
            </button>
          </p>
        )}
      </section>

      <section aria-labelledby="dq-issues-title" className="card">
        <h2 id="dq-issues-title">Data-quality issues</h2>
        <dl className="facts">
          <dt>DQ score</dt>
          <dd>{loan.dq_score}</dd>
          <dt>Invalid fields</dt>
          <dd>{loan.invalid_fields.join(", ") || "none"}</dd>
          <dt>Missing fields</dt>
          <dd>{missing.join(", ") || "none"}</dd>
          <dt>Duplicate of</dt>
          <dd>{loan.duplicate_of ?? "not a duplicate"}</dd>
        </dl>
      </section>

      <Corrections corrections={all} unconfirmed={unconfirmed} pending={corrections.isPending} />

      <Lineage loanId={loan.loan_id} />

      {canCorrect && (
        <section aria-labelledby="reprocess-title" className="card">
          <h2 id="reprocess-title">Reprocess</h2>
          <ReprocessDisclosure
            runId={loan.run_id}
            loanId={loan.loan_id}
            label="Reprocess with corrections…"
            parentRuleSet={loan.rule_set_version}
            waiting={waiting ? "Waiting for the event log to confirm the new correction…" : undefined}
          />
        </section>
      )}
    </>
  );
}

function Corrections({ corrections, unconfirmed, pending }: { corrections: Correction[]; unconfirmed: Correction[]; pending: boolean }) {
  const newestFirst = [...corrections].reverse();
  const pager = useSlicePager(newestFirst, PAGE);
  const waiting = new Set(unconfirmed.map((correction) => correction.correction_id));
  return (
    <section aria-labelledby="corrections-title" className="card">
      <h2 id="corrections-title">Corrections</h2>
      {pending && <Loading />}
      {!pending && corrections.length === 0 && <Empty>No corrections recorded for this loan.</Empty>}
      {corrections.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">By</th>
              <th scope="col">Field</th>
              <th scope="col">Before</th>
              <th scope="col">After</th>
              <th scope="col">Reason</th>
              <th scope="col">State</th>
            </tr>
          </thead>
          <tbody>
            {pager.items.map((correction) => (
              <tr key={correction.correction_id}>
                <td>{formatDate(correction.corrected_at)}</td>
                <td>{correction.corrected_by}</td>
                <td>{correction.field}</td>
                <td>{correction.previous ?? "—"}</td>
                <td>{correction.value}</td>
                <td>{correction.reason}</td>
                <td>{waiting.has(correction.correction_id) ? "being recorded" : "recorded"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <SlicePager pager={pager} label="Corrections" />
    </section>
  );
}

/** `kind: value` pairs of an event's details, short enough for a line. */
export function describeDetails(details: Record<string, unknown> | undefined): string {
  return Object.entries(details ?? {})
    .filter(([, value]) => value !== null && value !== undefined && !(Array.isArray(value) && value.length === 0))
    .map(([key, value]) => `${key.replace(/_/g, " ")}: ${Array.isArray(value) ? value.join(", ") : String(value)}`)
    .join("; ");
}

/** The loan's events in order; read again once a new correction is confirmed. */
function Lineage({ loanId }: { loanId: string }) {
  const history = useQuery({
    queryKey: ["history", loanId],
    queryFn: async () => data(await api.GET("/api/loans/{loan_id}/history", { params: { path: { loan_id: loanId } } })),
  });
  const pager = useSlicePager<HistoryEvent>(history.data?.events ?? [], PAGE);
  return (
    <section aria-labelledby="lineage-title" className="card">
      <h2 id="lineage-title">Lineage</h2>
      <ErrorMessage error={history.error} />
      {history.isPending && <Loading />}
      {history.data && (
        <p className="hint">
          From {history.data.source_file}, row {history.data.row}, run {history.data.run_id}.
        </p>
      )}
      {history.data && history.data.events.length === 0 && <Empty>No events about this loan yet.</Empty>}
      {pager.items.length > 0 && (
        <ol className="lineage" aria-label="Events about this loan">
          {pager.items.map((event, index) => (
            <li key={`${event.kind}-${event.topic}-${event.offset ?? index}-${index}`}>
              <strong>{event.kind}</strong> <span className="hint">{formatDate(event.occurred_at)}</span>
              <div>
                <code>
                  {event.topic}
                  {event.partition != null && ` [${event.partition}]`}
                  {event.offset != null && ` @${event.offset}`}
                </code>
              </div>
              <div>{describeDetails(event.details)}</div>
            </li>
          ))}
        </ol>
      )}
      <SlicePager pager={pager} label="Lineage" />
    </section>
  );
}
