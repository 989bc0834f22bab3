import { useState } from "react";

/** Client-side pages over a list the API answers whole (a loan's history, its corrections). */
export function useSlicePager<T>(items: T[], size: number) {
  const [page, setPage] = useState(0);
  const pages = Math.max(1, Math.ceil(items.length / size));
  const current = Math.min(page, pages - 1);
  return {
    items: items.slice(current * size, (current + 1) * size),
    page: current + 1,
    pages,
    previous: () => setPage(Math.max(0, current - 1)),
    next: () => setPage(Math.min(pages - 1, current + 1)),
  };
}

export function SlicePager({ pager, label }: { pager: ReturnType<typeof useSlicePager<unknown>>; label: string }) {
  if (pager.pages <= 1) return null;
  return (
    <nav className="pager" aria-label={`${label} pages`}>
      <button type="button" onClick={pager.previous} disabled={pager.page <= 1}>
        Previous page
      </button>
      <span>
        Page {pager.page} of {pager.pages}
      </span>
      <button type="button" onClick={pager.next} disabled={pager.page >= pager.pages}>
        Next page
      </button>
    </nav>
  );
}
