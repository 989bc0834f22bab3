import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router-dom";
import { api, data } from "../api/client";
import { Empty, ErrorMessage, Loading } from "../components/common";

export const DIFF_PAGE = 25;

/** The counts of a diff in reading order: changed and unchanged first, then each transition. */
export function countEntries(counts: Record<string, number>): [string, number][] {
  const first = ["changed", "unchanged"];
  const rest = Object.keys(counts)
    .filter((key) => !first.includes(key))
    .sort();
  return [...first, ...rest].filter((key) => key in counts).map((key) => [key, counts[key]]);
}

/** Whether a diff page has a next one: the list holds the changed loans and the added ones (rows
 * the parent lacks). */
export function hasNextDiffPage(counts: Record<string, number>, skip: number): boolean {
  return skip + DIFF_PAGE < (counts.changed ?? 0) + (counts.added ?? 0);
}

/** A reprocessed run against its parent (`GET /runs/{child}/diff`): counts and changed loans.
 * Read once the child has `settled` (every loan projected), never from a half-projected run. */
export function RunDiff({ runId, parentRunId, settled = true }: { runId: string; parentRunId: string; settled?: boolean }) {
  const [skip, setSkip] = useState(0);
  const diff = useQuery({
    queryKey: ["diff", runId, skip],
    queryFn: async () =>
      data(await api.GET("/api/runs/{run_id}/diff", { params: { path: { run_id: runId }, query: { skip, limit: DIFF_PAGE } } })),
    placeholderData: (previous) => previous,
    enabled: settled,
  });
  const d = diff.data;
  // While the next page loads the previous one stays on screen: no second click on its buttons.
  const moving = diff.isPlaceholderData;
  return (
    <section aria-labelledby={`diff-${runId}`} className="card">
      <h2 id={`diff-${runId}`}>Changes against the parent run</h2>
      <p>
        Parent: <Link to={`/runs/${parentRunId}`}>run {parentRunId}</Link>
      </p>
      <ErrorMessage error={diff.error} />
      {!settled && <Loading label="Waiting for every loan of the run to be projected…" />}
      {settled && diff.isPending && <Loading />}
      {d && (
        <>
          <ul className="counts" aria-label="Loans by outcome">
            {countEntries(d.counts).map(([name, count]) => (
              <li key={name}>
                <strong>{count}</strong> {name.replace("->", " → ").replace(/_/g, " ")}
              </li>
            ))}
          </ul>
          {d.changes.length === 0 && <Empty>No loan's outcome changed.</Empty>}
          {d.changes.length > 0 && (
            <table>
              <thead>
                <tr>
                  <th scope="col">Loan</th>
                  <th scope="col">Row</th>
                  <th scope="col">Disposition before</th>
                  <th scope="col">Disposition after</th>
                  <th scope="col">Price before</th>
                  <th scope="col">Price after</th>
                  <th scope="col">Exceptions added</th>
                  <th scope="col">Exceptions removed</th>
                </tr>
              </thead>
              <tbody>
                {d.changes.map((change) => (
                  <tr key={change.loan_id}>
                    <td>
                      <Link to={`/runs/${runId}/loans/${change.loan_id}`}>{change.seller_loan_number ?? change.loan_id}</Link>
                    </td>
                    <td className="num">{change.row}</td>
                    <td>{change.disposition_before ?? "—"}</td>
                    <td>{change.disposition_after}</td>
                    <td className="num">{change.price_before ?? "—"}</td>
                    <td className="num">{change.price_after ?? "—"}</td>
                    <td>{change.exceptions_added.join(", ") || "—"}</td>
                    <td>{change.exceptions_removed.join(", ") || "—"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <nav className="pager" aria-label="Changes pages">
            <button type="button" onClick={() => setSkip(Math.max(0, skip - DIFF_PAGE))} disabled={skip === 0 || moving}>
              Previous page
            </button>
            <span>Page {skip / DIFF_PAGE + 1}</span>
            <button type="button" onClick={() => setSkip(skip + DIFF_PAGE)} disabled={moving || !hasNextDiffPage(d.counts, skip)}>
              Next page
            </button>
          </nav>
        </>
      )}
    </section>
  );
}
