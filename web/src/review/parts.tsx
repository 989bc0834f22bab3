// Small pieces the review screens share: badges and a skip/limit pager (the queue pages by
// skip/limit and says how many cases match in all).
import { useEffect } from "react";
import type { Priority, SlaState } from "./review";
import { slaLabel, timeLeft } from "./review";

export function PriorityBadge({ priority }: { priority: Priority }) {
  return <span className={`badge priority-${priority}`}>{priority}</span>;
}

export function SlaBadge({ state, deadline }: { state: SlaState; deadline: string }) {
  return (
    <span className={`badge sla-${state}`} title={new Date(deadline).toLocaleString()}>
      {slaLabel(state)}
      {state !== "met" && <span className="sla-left"> · {timeLeft(deadline)}</span>}
    </span>
  );
}

export function SkipPager({
  skip,
  limit,
  total,
  onSkip,
  label,
  busy = false,
}: {
  skip: number;
  limit: number;
  total: number;
  onSkip: (skip: number) => void;
  label: string;
  /** While the page asked for is still loading (the old one shown in its place), the buttons wait:
   * a second click would page from the old page's position and skip or repeat a page. */
  busy?: boolean;
}) {
  const pages = Math.max(1, Math.ceil(total / limit));
  const page = Math.floor(skip / limit) + 1;
  return (
    <nav className="pager" aria-label={`${label} pages`} aria-busy={busy}>
      <button type="button" onClick={() => onSkip(Math.max(0, skip - limit))} disabled={busy || skip <= 0}>
        Previous page
      </button>
      <span>
        Page {page} of {pages} ({total} in all)
      </span>
      <button type="button" onClick={() => onSkip(skip + limit)} disabled={busy || skip + limit >= total}>
        Next page
      </button>
    </nav>
  );
}

/** When a page comes back empty although cases match (the last one on it was just worked, or a
 * link's `skip` lies past the end), go to the last page that has some instead of saying none. */
export function useClampSkip(
  page: { items: unknown[]; total: number } | undefined,
  skip: number,
  limit: number,
  settled: boolean,
  onSkip: (skip: number) => void,
) {
  const empty = settled && page !== undefined && page.items.length === 0 && page.total > 0 && skip > 0;
  const last = page ? Math.max(0, Math.floor((page.total - 1) / limit) * limit) : 0;
  useEffect(() => {
    if (empty && last < skip) onSkip(last);
    // onSkip changes with every render (it closes over the URL): the page and skip decide.
  }, [empty, last, skip]);
}
