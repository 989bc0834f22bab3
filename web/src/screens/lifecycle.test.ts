import { describe, expect, it } from "vitest";
import { actionsFor } from "./lifecycle";

describe("the actions offered on an exception", () => {
  it("offers a new exception's analyst acknowledge, assign and comment only", () => {
    expect(actionsFor("analyst", "new")).toEqual(["acknowledge", "assign", "comment"]);
  });

  it("offers waiver approval only to senior analysts and admins, and only while a waiver is pending", () => {
    expect(actionsFor("senior_analyst", "waiver_pending")).toEqual(["assign", "comment", "approve-waiver", "reject-waiver"]);
    expect(actionsFor("analyst", "waiver_pending")).toEqual(["assign", "comment"]);
    expect(actionsFor("senior_analyst", "in_progress")).not.toContain("approve-waiver");
  });

  it("lets a sales team comment and nothing else", () => {
    expect(actionsFor("sales_team")).toEqual(["comment"]);
    expect(actionsFor("sales_team", "new")).toEqual(["comment"]);
  });

  it("offers reopen on closed exceptions only", () => {
    expect(actionsFor("analyst", "waived")).toEqual(["comment", "reopen"]);
    expect(actionsFor("analyst", "in_progress")).not.toContain("reopen");
  });
});
