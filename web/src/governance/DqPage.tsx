import "./governance.css";
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { api, data, type Schemas } from "../api/client";
import { Empty, ErrorMessage, Loading, formatDate, shortId } from "../components/common";
import { LineChart } from "./charts";
import { DIMENSIONS, RunDataQuality, percent } from "./DataQuality";

type TrendPoint = Schemas["DqTrendPoint"];
export const TREND_PAGE = 50;

/** Midnight UTC of a YYYY-MM-DD date as the API's ISO date-time; undefined when empty. */
export function startOfDay(date: string): string | undefined {
  return date ? `${date}T00:00:00Z` : undefined;
}

/** The points of a page that the previous page did not already show (pages overlap on the time
 * they share, because `from` is inclusive). */
export function freshPoints(points: TrendPoint[], seen: ReadonlySet<string>): TrendPoint[] {
  return points.filter((point) => !seen.has(point.run_id));
}

/** The DQ page: per-run means over time (`GET /dq/trend`), and any run's DQ in full. */
export function DqPage() {
  const [params, setParams] = useSearchParams();
  const from = params.get("from") ?? "";
  const to = params.get("to") ?? "";
  const runId = params.get("run_id");
  // Pages move forward in time: each starts where the previous one ended.
  const [starts, setStarts] = useState<{ from: string | undefined; seen: string[] }[]>([]);
  const page = starts[starts.length - 1];
  const trend = useQuery({
    queryKey: ["dq-trend", from, to, page?.from ?? null],
    queryFn: async () =>
      data(
        await api.GET("/api/dq/trend", {
          params: { query: { from: page?.from ?? startOfDay(from), to: startOfDay(to), limit: TREND_PAGE } },
        }),
      ),
    placeholderData: (previous) => previous,
  });
  const points = trend.data ? freshPoints(trend.data, new Set(page?.seen ?? [])) : [];
  const last = trend.data?.[trend.data.length - 1];
  const more = trend.data !== undefined && trend.data.length === TREND_PAGE && last?.created_at != null;

  function setFilter(name: string, value: string) {
    const next = new URLSearchParams(params);
    if (value) next.set(name, value);
    else next.delete(name);
    setParams(next);
    setStarts([]);
  }

  function showRun(id: string) {
    const next = new URLSearchParams(params);
    next.set("run_id", id);
    setParams(next);
  }

  return (
    <section aria-labelledby="dq-title">
      <h1 id="dq-title">Data quality</h1>
      <div className="toolbar">
        <label>
          Runs created from
          <input type="date" value={from} onChange={(e) => setFilter("from", e.target.value)} />
        </label>
        <label>
          Created before
          <input type="date" value={to} onChange={(e) => setFilter("to", e.target.value)} />
        </label>
      </div>
      <ErrorMessage error={trend.error} />
      {trend.isPending && <Loading />}
      {trend.data && points.length === 0 && <Empty>No run with evaluated loans in this range.</Empty>}
      {points.length > 0 && (
        <>
          <h2>Mean DQ score per run</h2>
          <LineChart
            title="Mean DQ score per run, oldest first"
            points={points.map((point) => ({
              key: point.run_id,
              label: `Run ${shortId(point.run_id)} (${formatDate(point.created_at)})`,
              value: Number(point.dimensions.dq_score),
            }))}
          />
          <table>
            <thead>
              <tr>
                <th scope="col">Run</th>
                <th scope="col">Created</th>
                <th scope="col">Status</th>
                <th scope="col">Loans</th>
                <th scope="col">DQ score</th>
                {DIMENSIONS.map((name) => (
                  <th key={name} scope="col">
                    {name}
                  </th>
                ))}
                <th scope="col">Details</th>
              </tr>
            </thead>
            <tbody>
              {points.map((point) => (
                <tr key={point.run_id} className={point.run_id === runId ? "selected" : undefined}>
                  <td>
                    <Link to={`/runs/${point.run_id}`} aria-label={`Run ${point.run_id}`}>
                      {shortId(point.run_id)}
                    </Link>
                  </td>
                  <td>{formatDate(point.created_at)}</td>
                  <td>{point.status}</td>
                  <td className="num">{point.loans}</td>
                  <td className="num">{point.dimensions.dq_score}</td>
                  {DIMENSIONS.map((name) => (
                    <td key={name} className="num">
                      {percent(point.dimensions[name])}
                    </td>
                  ))}
                  <td>
                    <button type="button" className="link" onClick={() => showRun(point.run_id)} aria-label={`Show DQ of run ${point.run_id}`}>
                      Show DQ
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      <nav className="pager" aria-label="Trend pages">
        <button type="button" onClick={() => setStarts((stack) => stack.slice(0, -1))} disabled={starts.length === 0 || trend.isPlaceholderData}>
          Earlier runs
        </button>
        <span>Page {starts.length + 1}</span>
        <button
          type="button"
          disabled={!more || trend.isPlaceholderData}
          onClick={() =>
            last?.created_at &&
            setStarts((stack) =>
              // A second click before the next page arrives would start the same page again.
              stack[stack.length - 1]?.from === last.created_at
                ? stack
                : [
                    ...stack,
                    { from: last.created_at!, seen: (trend.data ?? []).filter((point) => point.created_at === last.created_at).map((point) => point.run_id) },
                  ],
            )
          }
        >
          Later runs
        </button>
      </nav>
      {runId && <RunDataQuality key={runId} runId={runId} title={`Data quality of run ${runId}`} />}
    </section>
  );
}
