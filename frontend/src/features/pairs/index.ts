export { useFlaggedCount } from "./api/pairs";
export { PairsPanel } from "./components/PairsPanel";
