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

/** A run's data quality: the four dimensions, per field, score bands, and the weakest loans. */
export function RunDataQuality({ runId, title = "Data quality" }: { runId: string; title?: string }) {
  const summary = useQuery({
    queryKey: ["dq-summary", runId],
    queryFn: async () => data(await api.GET("/api/dq/summary", { params: { query: { run_id: runId } } })),
  });
  const s = summary.data;
  return (
    <section aria-labelledby={`dq-${runId}`} className="card">
      <h2 id={`dq-${runId}`}>{title}</h2>
      <ErrorMessage error={summary.error} />
      {summary.isPending && <Loading />}
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
        onSubmit={(event) => {
          event.preventDefault();
          setMaxScore(draft);
          pager.reset();
        }}
      >
        <label>
          Maximum DQ score
          <input type="number" min={0} max={100} step="any" value={draft} onChange={(e) => setDraft(e.target.value)} />
        </label>
        <button type="submit">Show</button>
      </form>
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
      {failures.data && <Pager pager={pager} nextCursor={failures.data.next_cursor} label="Weakest loans" />}
    </>
  );
}
