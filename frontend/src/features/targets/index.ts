export { useTargetSets, type TargetSet } from "./api/targets";
export { PushingPairs, targetOf } from "./components/PushingPairs";
export { TargetComparison } from "./components/TargetComparison";
export { TargetPicker } from "./components/TargetPicker";
export { TargetSetsPanel } from "./components/TargetSetsPanel";
