import { useQuery } from "@tanstack/react-query";
import { Link, useLocation, useParams } from "react-router-dom";
import { api, data, type Loan } from "../api/client";
import { Empty, ErrorMessage, Loading, StatusBadge, shortId } from "../components/common";
import { LoanRecord } from "../governance/LoanRecord";

const SCAN_PAGES = 40;

/** The loan a link carried, else found by paging the run's loans (no single-loan endpoint yet). */
async function findLoan(runId: string, loanId: string): Promise<Loan | null> {
  let after: string | null | undefined = null;
  for (let page = 0; page < SCAN_PAGES; page += 1) {
    const result: { items: Loan[]; next_cursor?: string | null } = data(
      await api.GET("/api/loans", { params: { query: { run_id: runId, limit: 500, after } } }),
    );
    const loan = result.items.find((item) => item.loan_id === loanId);
    if (loan) return loan;
    after = result.next_cursor;
    if (!after) break;
  }
  return null;
}

const FIELDS: (keyof Loan)[] = [
  "seller_loan_number", "source_file", "row", "loan_amount", "note_rate", "ltv_ratio", "dti_ratio", "credit_score",
  "property_type", "occupancy_status", "loan_purpose", "purchase_price", "appraisal_value", "disposition",
  "pricing_spread", "final_price", "dq_score", "duplicate_of", "rule_set_version",
];

export function LoanView() {
  const { runId = "", loanId = "" } = useParams();
  const carried = (useLocation().state as { loan?: Loan } | null)?.loan;
  const loan = useQuery({
    queryKey: ["loan", runId, loanId],
    queryFn: () => findLoan(runId, loanId),
    initialData: carried,
  });
  const exceptions = useQuery({
    queryKey: ["exceptions", { loan_id: loanId }],
    queryFn: async () => data(await api.GET("/api/exceptions", { params: { query: { loan_id: loanId, run_id: runId, limit: 200 } } })),
  });

  return (
    <section aria-labelledby="loan-title">
      <p>
        <Link to={`/runs/${runId}`}>← Run {shortId(runId)}</Link>
      </p>
      <h1 id="loan-title">Loan {loan.data?.seller_loan_number ?? loanId}</h1>
      <ErrorMessage error={loan.error} />
      {loan.isPending && <Loading />}
      {loan.data === null && <Empty>This loan is not in run {runId}.</Empty>}
      {loan.data && (
        <>
          <dl className="facts">
            {FIELDS.map((field) => (
              <div key={field} className="fact">
                <dt>{field.replace(/_/g, " ")}</dt>
                <dd>{String(loan.data![field] ?? "—")}</dd>
              </div>
            ))}
          </dl>
          {loan.data.invalid_fields.length > 0 && <p>Invalid fields: {loan.data.invalid_fields.join(", ")}</p>}
          {Object.keys(loan.data.extra).length > 0 && (
            <>
              <h2>Other tape fields</h2>
              <dl className="facts">
                {Object.entries(loan.data.extra).map(([name, value]) => (
                  <div key={name} className="fact">
                    <dt>{name}</dt>
                    <dd>{String(value)}</dd>
                  </div>
                ))}
              </dl>
            </>
          )}
        </>
      )}
      <h2>Exceptions</h2>
      <ErrorMessage error={exceptions.error} />
      {exceptions.isPending && <Loading />}
      {exceptions.data && exceptions.data.items.length === 0 && <Empty>This loan has no exceptions.</Empty>}
      {exceptions.data && exceptions.data.items.length > 0 && (
        <ul className="loan-exceptions">
          {exceptions.data.items.map((row) => (
            <li key={row.exception_id}>
              <Link to={`/exceptions/${row.exception_id}`}>{row.exception_type}</Link> <StatusBadge status={row.status} /> {row.severity}:{" "}
              {row.message}
            </li>
          ))}
        </ul>
      )}
      {loan.data && <LoanRecord loan={loan.data} />}
    </section>
  );
}
