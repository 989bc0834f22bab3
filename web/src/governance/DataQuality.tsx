import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router-dom";
import { api, data } from "../api/client";
import { Empty, ErrorMessage, Loading, Pager, useCursorPager } from "../components/common";
import { BarChart } from "./charts";

const FAILURES_PAGE = 25;
export const DIMENSIONS = ["completeness", "validity", "conformance", "uniqueness"] as const;

/** A ratio of the API (0..1, 4 decimals) as a percentage. */
export function percent(ratio: string): string {
  const value = Number(ratio);
  return Number.isFinite(value) ? `${(value * 100).toFixed(2)}%` : ratio;
}

/** The maximum DQ score a person typed, as the API takes it (0 to 100), or an error to show. */
export function parseMaxScore(text: string): { value: string } | { error: string } {
  const trimmed = text.trim();
  const value = Number(trimmed);
  if (trimmed === "" || !Number.isFinite(value) || value < 0 || value > 100) {
    return { error: "Enter a maximum DQ score from 0 to 100." };
  }
  return { value: trimmed };
}

/** A run's data quality: the four dimensions, per field, score bands, and the weakest loans.
 * Read once the run has `settled` (every loan projected), never from a half-projected run. */
export function RunDataQuality({ runId, title = "Data quality", settled = true }: { runId: string; title?: string; settled?: boolean }) {
  const summary = useQuery({
    queryKey: ["dq-summary", runId],
    queryFn: async () => data(await api.GET("/api/dq/summary", { params: { query: { run_id: runId } } })),
    enabled: settled,
  });
  const s = summary.data;
  return (
    <section aria-labelledby={`dq-${runId}`} className="card">
      <h2 id={`dq-${runId}`}>{title}</h2>
      <ErrorMessage error={summary.error} />
      {!settled && <Loading label="Waiting for every loan of the run to be projected…" />}
      {settled && summary.isPending && <Loading />}
      {s && s.loans === 0 && <Empty>No loans were evaluated in this run.</Empty>}
      {s && s.loans > 0 && (
        <>
          <dl className="facts">
            <dt>Mean DQ score</dt>
            <dd>{s.dimensions.dq_score}</dd>
            <dt>Loans</dt>
            <dd>{s.loans}</dd>
            {DIMENSIONS.map((name) => (
              <div key={name} className="fact">
                <dt>{name}</dt>
                <dd>{percent(s.dimensions[name])}</dd>
              </div>
            ))}
            <dt>Rule set</dt>
            <dd>{s.rule_set_version ?? "—"}</dd>
          </dl>
          <div className="dq-grid">
            <div>
              <h3>Loans by DQ score</h3>
              <BarChart
                title="Loans by DQ score band"
                bars={s.score_bands.map((band) => ({ label: `${band.low}–${band.high}`, value: band.loans }))}
              />
            </div>
            <div>
              <h3>Per field</h3>
              <table>
                <thead>
                  <tr>
                    <th scope="col">Field</th>
                    <th scope="col">Present</th>
                    <th scope="col">Completeness</th>
                    <th scope="col">Validity</th>
                  </tr>
                </thead>
                <tbody>
                  {s.fields.map((field) => (
                    <tr key={field.field}>
                      <td>{field.field}</td>
                      <td className="num">{field.present}</td>
                      <td className="num">{field.completeness_pct}%</td>
                      <td className="num">{field.validity_pct == null ? "—" : `${field.validity_pct}%`}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </div>
          <DqFailures runId={runId} />
        </>
      )}
    </section>
  );
}

function DqFailures({ runId }: { runId: string }) {
  const pager = useCursorPager();
  const [draft, setDraft] = useState("75");
  const [maxScore, setMaxScore] = useState("75");
  const [draftError, setDraftError] = useState<string | null>(null);
  const failures = useQuery({
    queryKey: ["dq-failures", runId, maxScore, pager.after],
    queryFn: async () =>
      data(
        await api.GET("/api/dq/failures", {
          params: { query: { run_id: runId, max_score: Number(maxScore), limit: FAILURES_PAGE, after: pager.after } },
        }),
      ),
    placeholderData: (previous) => previous,
  });
  return (
    <>
      <h3>Weakest loans</h3>
      <form
        className="toolbar"
        noValidate
        onSubmit={(event) => {
          event.preventDefault();
          const parsed = parseMaxScore(draft);
          if ("error" in parsed) {
            setDraftError(parsed.error);
            return;
          }
          setDraftError(null);
          setMaxScore(parsed.value);
          pager.reset();
        }}
      >
        <label>
          Maximum DQ score
          <input
            type="number"
            min={0}
            max={100}
            step="any"
            value={draft}
            onChange={(e) => setDraft(e.target.value)}
            aria-invalid={draftError !== null}
            aria-describedby={draftError ? `dq-max-error-${runId}` : undefined}
          />
        </label>
        <button type="submit">Show</button>
      </form>
      {draftError && (
        <p role="alert" className="error" id={`dq-max-error-${runId}`}>
          {draftError}
        </p>
      )}
      <ErrorMessage error={failures.error} />
      {failures.isPending && <Loading />}
      {failures.data && failures.data.items.length === 0 && <Empty>No loan scores {maxScore} or less.</Empty>}
      {failures.data && failures.data.items.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">Loan</th>
              <th scope="col">Row</th>
              <th scope="col">DQ score</th>
              <th scope="col">Missing</th>
              <th scope="col">Invalid</th>
              <th scope="col">Duplicate</th>
              <th scope="col">Disposition</th>
            </tr>
          </thead>
          <tbody>
            {failures.data.items.map((failure) => (
              <tr key={failure.loan_id}>
                <td>
                  <Link to={`/runs/${runId}/loans/${failure.loan_id}`}>{failure.seller_loan_number ?? failure.loan_id}</Link>
                </td>
                <td className="num">{failure.row}</td>
                <td className="num">{failure.dq_score}</td>
                <td>{failure.missing_fields.join(", ") || "—"}</td>
                <td>{failure.invalid_fields.join(", ") || "—"}</td>
                <td>{failure.duplicate ? "yes" : "no"}</td>
                <td>{failure.disposition}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {failures.data && <Pager pager={pager} nextCursor={failures.data.next_cursor} label="Weakest loans" busy={failures.isPlaceholderData} />}
    </>
  );
}
