import type { Schemas } from "../api/client";

export function makeJob(overrides: Partial<Schemas["JobPublic"]> = {}): Schemas["JobPublic"] {
  return {
    id: 1,
    dataset_id: 1,
    kind: "audit",
    status: "queued",
    stage: null,
    progress: 0,
    error: null,
    metrics: null,
    config: { model: "tiny" },
    created_at: "2026-11-22T10:00:00Z",
    started_at: null,
    finished_at: null,
    ...overrides,
  };
}

export function makePair(
  index: number,
  harm: number,
  overrides: Partial<Schemas["PairPublic"]> = {},
): Schemas["PairPublic"] {
  return {
    id: 100 + index,
    index,
    prompt: `Human: question ${index}\n\nAssistant:`,
    chosen: ` helpful answer ${index}`,
    rejected: ` unhelpful answer ${index}`,
    metadata: {},
    flagged: false,
    note: null,
    scores: { split: "train", harm, loss: harm * 2, margin: -harm },
    ...overrides,
  };
}
