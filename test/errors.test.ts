import { describe, expect, it } from "vitest";
import { errorOf } from "../src/engine/daemon/run-record.js";
import { errorSummary, GitOpsError, SinkError } from "../src/errors.js";

describe("an error's JSON form", () => {
  it("keeps its own code, message, name and disposition whatever the context holds", () => {
    const error = new SinkError("E_SINK_WRITE", "sink=file: cannot write /srv/app.env", {
      context: {
        code: "E_FAKE",
        message: "all good",
        name: "NotAnError",
        disposition: "wait",
        sink: "file",
      },
    });
    expect(JSON.parse(JSON.stringify(error))).toEqual({
      name: "SinkError",
      code: "E_SINK_WRITE",
      message: "sink=file: cannot write /srv/app.env",
      disposition: "transient",
      sink: "file",
    });
  });

  it("carries the context's other fields", () => {
    const error = new GitOpsError("E_LISTEN", "cannot listen on 127.0.0.1:80: EACCES", {
      context: { host: "127.0.0.1", port: 80 },
    });
    expect(error.toJSON()).toMatchObject({ code: "E_LISTEN", host: "127.0.0.1", port: 80 });
  });
});

describe("errorSummary", () => {
  it("keeps a GitOpsError's code and message", () => {
    const error = new GitOpsError("E_STATE_LOCKED", "locked by pid 7", { context: { code: "E_OTHER" } });
    expect(errorSummary(error)).toEqual({ code: "E_STATE_LOCKED", message: "locked by pid 7" });
  });

  it("names anything else E_UNEXPECTED, with its message", () => {
    expect(errorSummary(new TypeError("x is undefined"))).toEqual({
      code: "E_UNEXPECTED",
      message: "x is undefined",
    });
    expect(errorSummary("a thrown string")).toEqual({ code: "E_UNEXPECTED", message: "a thrown string" });
  });

  it("is what /status records for a run's error", () => {
    const error = new GitOpsError("E_GIT", "fetch failed", {
      disposition: "transient",
      context: { code: "E_OTHER", message: "hidden" },
    });
    expect(errorOf(error)).toEqual({ code: "E_GIT", message: "fetch failed", disposition: "transient" });
    expect(errorOf(new RangeError("boom"))).toEqual({
      code: "E_UNEXPECTED",
      message: "boom",
      disposition: "transient",
    });
  });
});
