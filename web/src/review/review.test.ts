import { describe, expect, it } from "vitest";
import { caseActions, isOverride, money, openConditions, percent, timeLeft, trimmedLength } from "./review";

const ME = { id: "me", role: "analyst" };

describe("review rules", () => {
  it("offers an analyst to take a pending case, start their own and release it, and nothing on another's", () => {
    expect(caseActions(ME, { status: "pending", assignee: null })).toEqual(["assign"]);
    expect(caseActions(ME, { status: "assigned", assignee: "me" })).toEqual(["start", "release"]);
    expect(caseActions(ME, { status: "in_progress", assignee: "me" })).toEqual(["release"]);
    expect(caseActions(ME, { status: "assigned", assignee: "other" })).toEqual([]);
    expect(caseActions(ME, { status: "decided", assignee: "me" })).toEqual([]);
  });

  it("lets a senior analyst reassign and release another's case, and a sales user nothing", () => {
    const senior = { id: "me", role: "senior_analyst" };
    expect(caseActions(senior, { status: "assigned", assignee: "other" })).toEqual(["assign", "release"]);
    expect(caseActions(senior, { status: "in_progress", assignee: "other" })).toEqual(["release"]);
    expect(caseActions({ id: "me", role: "sales_team" }, { status: "pending", assignee: null })).toEqual([]);
  });

  it("calls a decision against the model's leaning an override, whichever way", () => {
    expect(isOverride("decline", "approve")).toBe(true);
    expect(isOverride("approve_with_conditions", "decline")).toBe(true);
    expect(isOverride("approve", "approve")).toBe(false);
    expect(isOverride("decline", "decline")).toBe(false);
  });

  it("counts a justification as the API does: characters after trimming", () => {
    expect(trimmedLength("  abc  ")).toBe(3);
    expect(trimmedLength("é😀")).toBe(2);
    expect(trimmedLength("   ")).toBe(0);
  });

  it("trims a justification with Python's idea of white space, as the API does", () => {
    expect(trimmedLength("\u001fabc\u0085")).toBe(3);
    expect(trimmedLength("\ufeffabc")).toBe(4);
    expect(trimmedLength("\u3000abc\u2028")).toBe(3);
  });

  it("lists the conditions still open and says how long is left before a deadline", () => {
    expect(openConditions({ conditions: [{}, {}, {}], fulfilled: [2] })).toEqual([1, 3]);
    const now = new Date("2026-12-01T10:00:00Z");
    expect(timeLeft("2026-12-01T13:20:00Z", now)).toBe("3h 20m left");
    expect(timeLeft("2026-12-01T09:15:00Z", now)).toBe("45m overdue");
  });

  it("shows a rate as a percentage with every digit the API gave, and no float rounding", () => {
    expect(percent("0.9995")).toBe("99.95%");
    expect(percent("0.9000")).toBe("90%");
    expect(percent("1.0000")).toBe("100%");
    expect(percent("0.0001")).toBe("0.01%");
    expect(percent("0.5")).toBe("50%");
  });

  it("shows an amount grouped with two decimals and every digit, never through a float", () => {
    expect(money("3283656.1")).toBe("3,283,656.10");
    expect(money("250000")).toBe("250,000.00");
    expect(money("12345678901234567.891")).toBe("12,345,678,901,234,567.891");
    expect(money("-0.5")).toBe("-0.50");
    expect(money(null)).toBe("—");
    expect(money("n/a")).toBe("n/a");
  });
});
