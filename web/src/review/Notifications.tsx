import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef } from "react";
import { NavLink, Link, useSearchParams } from "react-router-dom";
import { api, data } from "../api/client";
import { Empty, ErrorMessage, Loading, formatDate } from "../components/common";
import { SkipPager, useClampSkip } from "./parts";
import "./review.css";

const PAGE = 25;
const POLL_MS = 30_000;

/** The bell in the header: a link to the notifications that says how many are unread (polled). */
export function NotificationBell() {
  const unread = useQuery({
    queryKey: ["notifications", "unread-count"],
    queryFn: async () => data(await api.GET("/api/notifications", { params: { query: { unread: true, limit: 1 } } })).unread,
    refetchInterval: POLL_MS,
  });
  const count = unread.data ?? 0;
  const label = count === 1 ? "Notifications, 1 unread" : `Notifications, ${count} unread`;
  return (
    <NavLink to="/notifications" className="bell" aria-label={label} title={label}>
      <svg width="16" height="16" viewBox="0 0 16 16" aria-hidden="true" focusable="false">
        <path d="M8 1a4 4 0 0 0-4 4v3L2.5 11h11L12 8V5a4 4 0 0 0-4-4zM6.5 12.5a1.5 1.5 0 0 0 3 0z" className="bell-shape" />
      </svg>
      {count > 0 && <span className="bell-count">{count > 99 ? "99+" : count}</span>}
    </NavLink>
  );
}

/** Your notifications, newest first (SLA warnings and breaches, escalations, override outcomes,
 * runs completed or failed): mark one or all read. */
export function Notifications() {
  const client = useQueryClient();
  const [params, setParams] = useSearchParams();
  const unreadOnly = params.get("unread") === "true";
  const skip = Number(params.get("skip") ?? 0) || 0;
  const list = useQuery({
    queryKey: ["notifications", { unreadOnly, skip }],
    queryFn: async () => data(await api.GET("/api/notifications", { params: { query: { unread: unreadOnly, skip, limit: PAGE } } })),
    placeholderData: keepPreviousData,
    refetchInterval: POLL_MS,
  });
  const refresh = () => void client.invalidateQueries({ queryKey: ["notifications"] });
  // What was just marked read: its button goes (Mark all read is disabled), so the focus is
  // brought to the notification itself, or the page's heading, instead of the body.
  const marked = useRef<string | null>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  const readOne = useMutation({
    mutationFn: async (id: string) => data(await api.POST("/api/notifications/{notification_id}/read", { params: { path: { notification_id: id } } })),
    onSuccess: (_, id) => {
      marked.current = id;
      refresh();
    },
  });
  const readAll = useMutation({
    mutationFn: async () => data(await api.POST("/api/notifications/read-all")),
    onSuccess: () => {
      marked.current = "";
      refresh();
    },
  });
  useEffect(() => {
    if (marked.current === null || (document.activeElement && document.activeElement !== document.body)) return;
    const item = marked.current ? document.querySelector<HTMLElement>(`li[data-notification="${marked.current}"]`) : null;
    (item ?? heading.current)?.focus();
    marked.current = null;
  }, [list.data]);

  function set(name: string, value: string) {
    const next = new URLSearchParams(params);
    if (value) next.set(name, value);
    else next.delete(name);
    if (name !== "skip") next.delete("skip");
    setParams(next);
  }

  useClampSkip(list.data, skip, PAGE, !list.isPlaceholderData && !list.isFetching, (next) => set("skip", next ? String(next) : ""));

  const page = list.data;
  const items = page?.items ?? [];
  return (
    <section aria-labelledby="notifications-title">
      <h1 id="notifications-title" ref={heading} tabIndex={-1}>Notifications</h1>
      <div className="toolbar">
        <label className="choice">
          <input type="checkbox" checked={unreadOnly} onChange={(e) => set("unread", e.target.checked ? "true" : "")} />
          Only unread
        </label>
        <span>{page ? `${page.unread} unread` : ""}</span>
        <button type="button" disabled={readAll.isPending || !page || page.unread === 0} onClick={() => readAll.mutate()}>
          Mark all read
        </button>
      </div>
      <ErrorMessage error={readAll.error} />
      <ErrorMessage error={readOne.error} />
      <ErrorMessage error={list.error} />
      {list.isPending ? (
        <Loading />
      ) : items.length === 0 ? (
        <Empty>{unreadOnly ? "No unread notifications." : "No notifications yet."}</Empty>
      ) : (
        <ul className="notifications" aria-busy={list.isFetching}>
          {items.map((item) => (
            <li key={item.notification_id} data-notification={item.notification_id} tabIndex={-1} className={item.read ? "card read" : "card unread"}>
              <p>
                <span className={`badge severity-${item.severity}`}>{item.severity}</span> <strong>{item.title}</strong>{" "}
                {!item.read && <span className="badge badge-pending">unread</span>}
              </p>
              <p>{item.message}</p>
              <p className="hint">
                {formatDate(item.occurred_at)} · {item.kind.replace(/[._]/g, " ")}
                {item.case_id && (
                  <>
                    {" · "}
                    <Link to={`/review/cases/${item.case_id}`}>open the case</Link>
                  </>
                )}
                {item.run_id && (
                  <>
                    {" · "}
                    <Link to={`/runs/${item.run_id}`}>open the run</Link>
                  </>
                )}
              </p>
              {!item.read && (
                <button type="button" disabled={readOne.isPending} onClick={() => readOne.mutate(item.notification_id)} aria-label={`Mark read: ${item.title}`}>
                  Mark read
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      {page && page.total > 0 && <SkipPager skip={skip} limit={PAGE} total={page.total} onSkip={(next) => set("skip", next ? String(next) : "")} label="Notifications" busy={list.isPlaceholderData} />}
    </section>
  );
}
