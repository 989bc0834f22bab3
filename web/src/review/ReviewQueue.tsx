import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { api, data, type Schemas } from "../api/client";
import { useMe } from "../auth";
import { Empty, ErrorMessage, Loading, StatusBadge, formatDate } from "../components/common";
import { PriorityBadge, SkipPager, SlaBadge, useClampSkip } from "./parts";
import {
  CASE_STATUSES,
  PRIORITIES,
  SORTS,
  actionLabel,
  caseActions,
  money,
  percent,
  who,
  type CaseAction,
  type CaseStatus,
  type Priority,
  type Sort,
} from "./review";
import "./review.css";

const PAGE = 25;
const POLL_MS = 15_000;
const USER_ID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** The review queue (SPEC §8): summary counts, filters in the URL, sorts, paging, and the
 * assign / start / release actions of each case. */
export function ReviewQueue() {
  const me = useMe();
  const client = useQueryClient();
  const [params, setParams] = useSearchParams();
  const analystParam = params.get("analyst") ?? "";
  const otherId = params.get("analyst_id") ?? "";
  // Until the id typed is a whole user id, the API would refuse it (422) on every keystroke, each
  // a request against the per-user rate limit: wait for the whole id.
  const typingId = analystParam === "other" && !USER_ID.test(otherId);
  const filter = {
    status: (params.get("status") as CaseStatus) || undefined,
    analyst: analystParam === "me" ? me.id : analystParam === "other" && !typingId ? otherId : undefined,
    priority: (params.get("priority") as Priority) || undefined,
    sort: ((params.get("sort") as Sort) || "priority") as Sort,
  };
  const skip = Number(params.get("skip") ?? 0) || 0;
  const summary = useQuery({
    queryKey: ["review-summary"],
    queryFn: async () => data(await api.GET("/api/review/queue/summary")),
    refetchInterval: POLL_MS,
  });
  const metrics = useQuery({
    queryKey: ["review-sla-metrics"],
    queryFn: async () => data(await api.GET("/api/review/sla-metrics")),
    refetchInterval: 60_000,
  });
  const queue = useQuery({
    queryKey: ["review-queue", filter, skip],
    queryFn: async () => data(await api.GET("/api/review/queue", { params: { query: { ...filter, skip, limit: PAGE } } })),
    placeholderData: keepPreviousData,
    refetchInterval: POLL_MS,
    enabled: !typingId,
  });
  // The case last acted on: its button goes when the action lands (Assign gives way to Start), so
  // the focus is brought back to that row's first action, or its link, not left on the body.
  const acted = useRef<string | null>(null);
  const table = useRef<HTMLTableElement>(null);
  useEffect(() => {
    const id = acted.current;
    if (!id || (document.activeElement && document.activeElement !== document.body)) return;
    const row = table.current?.querySelector(`tr[data-case="${id}"]`);
    const target = row?.querySelector<HTMLElement>("button") ?? row?.querySelector<HTMLElement>("a");
    if (target) {
      target.focus();
      acted.current = null;
    }
  }, [queue.data]);
  const act = useMutation({
    mutationFn: async ({ caseId, action }: { caseId: string; action: CaseAction }) =>
      data(await api.POST("/api/review/cases/{case_id}/{action}", { params: { path: { case_id: caseId, action } }, body: {} })),
    onSuccess: (detail) => {
      acted.current = detail.case_id;
      client.setQueryData(["review-case", detail.case_id], detail);
      void client.invalidateQueries({ queryKey: ["review-queue"] });
      void client.invalidateQueries({ queryKey: ["review-summary"] });
    },
  });

  function set(name: string, value: string) {
    const next = new URLSearchParams(params);
    if (value) next.set(name, value);
    else next.delete(name);
    if (name !== "skip") next.delete("skip");
    setParams(next);
  }

  useClampSkip(queue.data, skip, PAGE, !queue.isPlaceholderData && !queue.isFetching, (next) => set("skip", next ? String(next) : ""));

  const counts = summary.data;
  const items = queue.data?.items ?? [];
  const custom = analystParam === "other";

  return (
    <section aria-labelledby="queue-title">
      <h1 id="queue-title">Review queue</h1>
      <ErrorMessage error={summary.error} />
      {counts && (
        <dl className="review-counts" aria-label="Open cases">
          <div>
            <dt>pending</dt>
            <dd>{counts.total_pending}</dd>
          </div>
          <div>
            <dt>assigned</dt>
            <dd>{counts.total_assigned}</dd>
          </div>
          <div>
            <dt>in progress</dt>
            <dd>{counts.total_in_progress}</dd>
          </div>
          <div className={counts.approaching_sla ? "count-warn" : ""}>
            <dt>SLA approaching</dt>
            <dd>{counts.approaching_sla}</dd>
          </div>
          <div className={counts.breached_sla ? "count-alarm" : ""}>
            <dt>SLA breached</dt>
            <dd>{counts.breached_sla}</dd>
          </div>
          {PRIORITIES.map((level) => (
            <div key={level}>
              <dt>{level}</dt>
              <dd>{counts.by_priority[level] ?? 0}</dd>
            </div>
          ))}
        </dl>
      )}
      {metrics.data && <SlaMetricsLine metrics={metrics.data} />}
      <form className="toolbar filters" aria-label="Filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Status
          <select aria-label="Status" value={filter.status ?? ""} onChange={(e) => set("status", e.target.value)}>
            <option value="">open (pending, assigned, in progress)</option>
            {CASE_STATUSES.map((status) => (
              <option key={status} value={status}>
                {status.replace(/_/g, " ")}
              </option>
            ))}
          </select>
        </label>
        <label>
          Analyst
          <select aria-label="Analyst" value={analystParam} onChange={(e) => set("analyst", e.target.value)}>
            <option value="">anyone</option>
            <option value="me">me</option>
            <option value="other">another analyst (id)</option>
          </select>
        </label>
        {custom && (
          <label>
            Analyst id
            <input value={params.get("analyst_id") ?? ""} onChange={(e) => set("analyst_id", e.target.value.trim())} placeholder="user id" />
          </label>
        )}
        <label>
          Priority
          <select aria-label="Priority" value={filter.priority ?? ""} onChange={(e) => set("priority", e.target.value)}>
            <option value="">any</option>
            {PRIORITIES.map((level) => (
              <option key={level} value={level}>
                {level}
              </option>
            ))}
          </select>
        </label>
        <label>
          Sort by
          <select aria-label="Sort by" value={filter.sort} onChange={(e) => set("sort", e.target.value === "priority" ? "" : e.target.value)}>
            {SORTS.map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
        </label>
      </form>
      <ErrorMessage error={act.error} />
      <ErrorMessage error={queue.error} />
      {typingId ? (
        <Empty>Enter the analyst's whole user id to see their cases.</Empty>
      ) : queue.isPending ? (
        <Loading />
      ) : items.length === 0 ? (
        <Empty>No review cases match these filters.</Empty>
      ) : (
        <table ref={table} aria-busy={queue.isFetching}>
          <thead>
            <tr>
              <th scope="col">Loan</th>
              <th scope="col">Priority</th>
              <th scope="col">SLA</th>
              <th scope="col">Status</th>
              <th scope="col">Score</th>
              <th scope="col">Why review</th>
              <th scope="col">Amount</th>
              <th scope="col">Assignee</th>
              <th scope="col">Opened</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {items.map((item) => {
              const name = item.seller_loan_number ?? `loan ${item.seq}`;
              return (
                <tr key={item.case_id} data-case={item.case_id}>
                  <td>
                    <Link to={`/review/cases/${item.case_id}`} aria-label={`Case ${name}`}>
                      {name}
                    </Link>
                  </td>
                  <td>
                    <PriorityBadge priority={item.priority} /> <span className="hint">{item.priority_score}</span>
                  </td>
                  <td>
                    <SlaBadge state={item.sla_state} deadline={item.sla_deadline} />
                    {item.escalated_at && <span className="badge sla-breached"> escalated</span>}
                  </td>
                  <td>
                    <StatusBadge status={item.status} />
                  </td>
                  <td className="num">{item.score}</td>
                  <td>{item.routing_reason.replace(/_/g, " ")}</td>
                  <td className="num">{money(item.loan_amount)}</td>
                  <td>{who(item.assignee, me)}</td>
                  <td>{formatDate(item.opened_at)}</td>
                  <td className="row-actions">
                    {caseActions(me, item).map((action) => (
                      <button
                        key={action}
                        type="button"
                        disabled={act.isPending}
                        aria-label={`${actionLabel(action)}: ${name}`}
                        onClick={() => act.mutate({ caseId: item.case_id, action })}
                      >
                        {actionLabel(action)}
                      </button>
                    ))}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {!typingId && queue.data && queue.data.total > 0 && (
        <SkipPager skip={skip} limit={PAGE} total={queue.data.total} onSkip={(next) => set("skip", next ? String(next) : "")} label="Review queue" busy={queue.isPlaceholderData} />
      )}
    </section>
  );
}

function duration(seconds: number): string {
  return seconds >= 3600 ? `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m` : `${Math.round(seconds / 60)}m`;
}

/** How the cases opened in the last 30 days fared against their SLA (`GET /review/sla-metrics`). */
function SlaMetricsLine({ metrics }: { metrics: Schemas["SlaMetrics"] }) {
  const rate = metrics.on_time_rate == null ? "—" : percent(metrics.on_time_rate);
  const time = metrics.time_to_decision_seconds;
  return (
    <p className="hint" aria-label="SLA over the last 30 days">
      Last 30 days: {metrics.cases} cases, {metrics.decided} decided, on time {rate}, {metrics.breaches} breaches, {metrics.warnings} warnings,{" "}
      {metrics.escalations} escalations{time ? `, median time to decision ${duration(time.p50)}` : ""}.
    </p>
  );
}
