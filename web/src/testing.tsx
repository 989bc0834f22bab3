import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render } from "@testing-library/react";
import type { ReactNode } from "react";
import { MemoryRouter } from "react-router-dom";
import type { User } from "./api/client";
import { MeProvider } from "./auth";

export const ANALYST: User = {
  id: "11111111-1111-4111-8111-111111111111",
  username: "ana",
  email: "ana@example.com",
  role: "analyst",
  team_id: null,
  is_active: true,
  created_at: "2026-12-01T00:00:00Z",
};

export interface Call {
  method: string;
  url: URL;
  body: unknown;
}

/** A fetch that answers from `routes` ("GET /api/runs" → [status, body]) and records each call. */
export function fakeFetch(routes: Record<string, [number, unknown]>): Call[] {
  const calls: Call[] = [];
  globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(new URL(String(input), location.origin), init);
    const url = new URL(request.url);
    const text = await request.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = text;
    }
    calls.push({ method: request.method, url, body });
    const key = `${request.method} ${url.pathname}`;
    const [status, payload] = routes[key] ?? [404, { error: `no route ${key}`, status_code: 404 }];
    return new Response(JSON.stringify(payload), { status, headers: { "Content-Type": "application/json" } });
  }) as typeof fetch;
  return calls;
}

export function renderScreen(ui: ReactNode, { me = ANALYST, path = "/" }: { me?: User; path?: string } = {}) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <MemoryRouter initialEntries={[path]}>
        <MeProvider me={me}>{ui}</MeProvider>
      </MemoryRouter>
    </QueryClientProvider>,
  );
}
