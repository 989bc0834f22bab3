// The API client: openapi-fetch typed by the schema that openapi-typescript generates from the
// committed openapi.json (the gateway's own app.openapi(); a Python test keeps them equal), so a
// changed endpoint breaks `tsc`, not the user.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type Run = Schemas["RunResponse"];
export type ExceptionRow = Schemas["ExceptionResponse"];
export type Loan = Schemas["LoanResponse"];
export type User = Schemas["UserResponse"];

const STORAGE_KEY = "loan-engine.session";

export interface Session {
  access: string;
  refresh: string;
}

let session: Session | null = readSession();
const listeners = new Set<() => void>();

function readSession(): Session | null {
  try {
    const raw = sessionStorage.getItem(STORAGE_KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

export function getSession(): Session | null {
  return session;
}

export function setSession(next: Session | null): void {
  session = next;
  if (next) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(next));
  else sessionStorage.removeItem(STORAGE_KEY);
  listeners.forEach((listener) => listener());
}

export function onSessionChange(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** An error answer of the API, kept as the API gave it. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(describeError(status, body));
  }
}

interface ErrorBody {
  error?: string;
  detail?: unknown;
  request_id?: string;
  details?: { loc?: unknown[]; msg?: string }[];
}

export function describeError(status: number, body: unknown): string {
  const b = (body ?? {}) as ErrorBody;
  let text = typeof b.error === "string" ? b.error : typeof b.detail === "string" ? b.detail : `HTTP ${status}`;
  if (Array.isArray(b.details) && b.details.length) {
    text += ": " + b.details.map((d) => `${(d.loc ?? []).join(".")} ${d.msg ?? ""}`.trim()).join("; ");
  }
  return text;
}

async function refreshTokens(): Promise<boolean> {
  const current = session;
  if (!current) return false;
  const answer = await fetch("/api/auth/refresh", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refresh_token: current.refresh }),
  });
  if (!answer.ok) return false;
  const tokens = (await answer.json()) as Schemas["TokenResponse"];
  setSession({ access: tokens.access_token, refresh: tokens.refresh_token });
  return true;
}

/** fetch with the bearer token, refreshing it once on a 401; the session ends when that fails. */
export async function authFetch(input: string, init: RequestInit = {}): Promise<Response> {
  const send = () => {
    const headers = new Headers(init.headers);
    if (session) headers.set("Authorization", `Bearer ${session.access}`);
    return fetch(input, { ...init, headers });
  };
  let answer = await send();
  if (answer.status === 401 && session) {
    if (await refreshTokens()) answer = await send();
    else setSession(null);
  }
  return answer;
}

const auth: Middleware = {
  async onRequest({ request }) {
    if (session) request.headers.set("Authorization", `Bearer ${session.access}`);
    return request;
  },
  async onResponse({ request, response }) {
    if (response.status !== 401 || !session || request.url.includes("/api/auth/")) return response;
    if (!(await refreshTokens())) {
      setSession(null);
      return response;
    }
    const retry = new Request(request, { headers: new Headers(request.headers) });
    retry.headers.set("Authorization", `Bearer ${session!.access}`);
    return fetch(retry);
  },
};

export const api = createClient<paths>({ baseUrl: globalThis.location?.origin ?? "", fetch: (request) => globalThis.fetch(request) });
api.use(auth);

/** The data of an openapi-fetch answer, or an ApiError with the API's own body. */
export function data<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.error !== undefined || !result.response.ok) {
    throw new ApiError(result.response.status, result.error);
  }
  return result.data as T;
}

export async function login(username: string, password: string): Promise<void> {
  const body = new URLSearchParams({ username, password, grant_type: "password" });
  const answer = await fetch("/api/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body,
  });
  const payload: unknown = await answer.json().catch(() => null);
  if (!answer.ok) throw new ApiError(answer.status, payload);
  const tokens = payload as Schemas["TokenResponse"];
  setSession({ access: tokens.access_token, refresh: tokens.refresh_token });
}

export async function logout(): Promise<void> {
  const current = session;
  setSession(null);
  if (current) {
    await fetch("/api/auth/logout", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${current.access}` },
      body: JSON.stringify({ refresh_token: current.refresh }),
    }).catch(() => undefined);
  }
}

/** Download an authenticated file: fetch it as a blob and hand it to the browser. */
export async function download(url: string, fallbackName: string): Promise<void> {
  const answer = await authFetch(url);
  if (!answer.ok) throw new ApiError(answer.status, await answer.json().catch(() => null));
  const disposition = answer.headers.get("Content-Disposition") ?? "";
  const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition);
  const name = match ? decodeURIComponent(match[1]) : fallbackName;
  const href = URL.createObjectURL(await answer.blob());
  const link = document.createElement("a");
  link.href = href;
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10_000);
}
