import { afterEach, describe, expect, it } from "vitest";
import { api, data, describeError, getSession, setSession } from "./client";

afterEach(() => setSession(null));

describe("the API client", () => {
  it("refreshes the tokens once on a 401 and repeats the request with the new access token", async () => {
    setSession({ access: "old", refresh: "r1" });
    const seen: string[] = [];
    globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const request = input instanceof Request ? input : new Request(new URL(String(input), location.origin), init);
      const path = new URL(request.url).pathname;
      seen.push(`${path} ${request.headers.get("Authorization") ?? ""}`);
      if (path === "/api/auth/refresh") {
        return Response.json({ access_token: "new", refresh_token: "r2", expires_in: 900 });
      }
      if (request.headers.get("Authorization") === "Bearer old") {
        return Response.json({ error: "Token expired", status_code: 401 }, { status: 401 });
      }
      return Response.json({ items: [], skip: 0, limit: 20, next_cursor: null });
    }) as typeof fetch;
    const page = data(await api.GET("/api/runs"));
    expect(page.items).toEqual([]);
    expect(seen).toEqual(["/api/runs Bearer old", "/api/auth/refresh ", "/api/runs Bearer new"]);
    expect(getSession()).toEqual({ access: "new", refresh: "r2" });
  });

  it("ends the session when the refresh token is refused too", async () => {
    setSession({ access: "old", refresh: "revoked" });
    globalThis.fetch = (async () => Response.json({ error: "Token revoked", status_code: 401 }, { status: 401 })) as typeof fetch;
    await expect(api.GET("/api/runs").then(data)).rejects.toThrow("Token revoked");
    expect(getSession()).toBeNull();
  });

  it("words a validation error with each field the API named", () => {
    const text = describeError(422, {
      error: "Validation error",
      details: [{ loc: ["body", "pdate"], msg: "Input should be a valid date" }],
    });
    expect(text).toBe("Validation error: body.pdate Input should be a valid date");
  });
});
