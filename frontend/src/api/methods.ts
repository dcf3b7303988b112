// Human names of the engine's score methods (EngineConfig.methods), shared by the launch form,
// the verify form and the benchmark table; a method not listed reads with spaces for `_`.
const METHOD_LABELS: Record<string, string> = {
  length: "length heuristic",
  oof_loss: "out-of-fold loss",
  ensemble: "ensemble (−mean margin)",
};

export function methodLabel(method: string): string {
  return METHOD_LABELS[method] ?? method.replace(/_/g, " ");
}
