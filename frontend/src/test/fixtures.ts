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
    resumes: 0,
    eta_seconds: null,
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
    row: index + 1,
    state: overrides.flagged ? "flagged" : "unreviewed",
    lengths: {},
    percentiles: {},
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

type AuditMetrics = Schemas["AuditMetrics"];
type VerifyMetrics = Schemas["VerifyMetrics"];

/** An audit's trust verdict (worker/influence/trust.py) for a model that does not beat chance:
 *  60 validation pairs, accuracy 0.57 with an interval that holds 0.5, loss just under ln 2. */
export const weakTrust = {
  n_val: 60,
  val_accuracy: 0.5667,
  val_accuracy_ci95: [0.44, 0.686],
  val_loss: 0.6923,
  ln2: 0.693147,
  is_evidence: false,
  message: "The ranking is not evidence: ...",
} satisfies Schemas["TrustVerdict"];

/** `metrics` of an audit job as the API sends them (the stored keys, tagged with the kind). */
export function auditMetrics(metrics: Omit<AuditMetrics, "kind"> = {}): AuditMetrics {
  return { kind: "audit", ...metrics };
}

/** `metrics` of a succeeded verify job with 3 seeds, in the shape worker/jobs/verify.py stores. */
export function makeVerifyMetrics(overrides: Partial<VerifyMetrics> = {}): VerifyMetrics {
  const accuracy = { full: [0.6, 0.62, 0.61], pruned: [0.63, 0.62, 0.64], random: [0.59, 0.61, 0.6] };
  const loss = { full: [0.66, 0.65, 0.67], pruned: [0.64, 0.65, 0.63], random: [0.67, 0.66, 0.68] };
  const arms = ["full", "pruned", "random"] as const;
  const nTrain = { full: 270, pruned: 243, random: 243 };
  const runs = [0, 1, 2].flatMap((seed) =>
    arms.map((arm) => ({
      seed,
      arm,
      n_train: nTrain[arm],
      accuracy: accuracy[arm][seed],
      loss: loss[arm][seed],
      seconds: 40,
    })),
  );
  const summary = (values: number[], mean: number, std: number) => ({ n: 3, mean, std, values });
  const difference = (mean: number, std: number | null, low: number | null, high: number | null) => ({
    n: 3,
    mean,
    std,
    ci_low: low,
    ci_high: high,
    confidence: 0.95,
  });
  return {
    kind: "verify",
    runs,
    arms: {
      full: { accuracy: summary(accuracy.full, 0.61, 0.01), loss: summary(loss.full, 0.66, 0.01) },
      pruned: { accuracy: summary(accuracy.pruned, 0.63, 0.01), loss: summary(loss.pruned, 0.64, 0.01) },
      random: { accuracy: summary(accuracy.random, 0.6, 0.01), loss: summary(loss.random, 0.67, 0.01) },
    },
    differences: {
      pruned_minus_full: {
        accuracy: difference(0.02, 0.02, -0.0297, 0.0697),
        loss: difference(-0.02, 0.02, -0.0697, 0.0297),
      },
      pruned_minus_random: {
        accuracy: difference(0.03, 0.01, 0.0052, 0.0548),
        loss: difference(-0.03, 0.01, -0.0548, -0.0052),
      },
    },
    n_removed: 27,
    n_train: 270,
    n_eval: 30,
    seeds: [0, 1, 2],
    summary:
      "Pruning 27 of 270 training pairs changed pairwise accuracy on 30 evaluation pairs by +2.0 points vs all pairs: neither difference is distinguishable from zero.",
    audit_job_id: 5,
    rule: "top 10% by harm",
    evaluated_on: "the audit's validation split",
    ...overrides,
  };
}
